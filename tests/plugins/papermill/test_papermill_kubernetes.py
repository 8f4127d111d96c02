"""plait-papermill on Kubernetes: a notebook task is a Pod; the notebook, its file inputs and
its outputs go through the blob store (S3 on the moto server), on the emulated cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import test_papermill
from k8s_cluster import OnKubernetes
from plait.testing.lifecycle import LifecycleCase

pytest.importorskip("kubernetes", reason="the Kubernetes platform needs the kubernetes client: pip install kubernetes")
from k8s_cluster import Cluster  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
NOTEBOOKS = Path(__file__).resolve().parent / "notebooks.py"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    with Cluster(tmp_path_factory.mktemp("cluster")) as c:
        yield c


def run(cluster: Cluster, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plait.cli", "run", *args, "--platform", "kubernetes"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=cluster.engine_env(home))


def test_a_notebook_runs_in_a_pod_with_a_frame_in_and_typed_outputs_and_a_report_out(cluster: Cluster, tmp_path: Path):
    before = cluster.kube.created["Pod"]
    done = run(cluster, tmp_path / "home", f"{NOTEBOOKS}:analyse", "--n", "5", "--title", "xs", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"mean": 2.0' in done.stdout and '"rows": 5' in done.stdout and '"doubled_total": 20.0' in done.stdout
    assert '"summary": "xs: 2.0"' in done.stdout
    assert cluster.kube.created["Pod"] - before == 4  # frame, the notebook, total, read
    assert sorted((tmp_path / "home").glob("runs/*/stats/1/stdout.log")), "the pod's log was not kept"
    import boto3

    s3 = boto3.client("s3", endpoint_url=cluster.endpoint, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=cluster.bucket)
            for o in page.get("Contents", [])]
    reports = [k for k in keys if k.endswith("report.html")]
    assert reports, keys
    assert "mean is 2.0" in s3.get_object(Bucket=cluster.bucket, Key=reports[-1])["Body"].read().decode()
    import json
    import sqlite3

    rows = sqlite3.connect(tmp_path / "home" / "plait.db").execute(
        "select data from events where kind = 'attempt' and entity = 'stats/1'").fetchall()
    links = [json.loads(r[0]).get("logs") for r in rows if json.loads(r[0]).get("logs")]
    assert links and {"notebook", "report"} <= set(links[-1]), links  # the attempt links both


def test_a_failing_cell_on_kubernetes_names_its_number_source_and_exception(cluster: Cluster, tmp_path: Path):
    done = run(cluster, tmp_path / "home", f"{NOTEBOOKS}:divide", "--divisor", "0")
    assert done.returncode != 0
    out = " ".join((done.stdout + done.stderr).split())  # the console wraps long lines
    assert "cell 3 raised ZeroDivisionError: division by zero" in out and "ratio = value / divisor" in out, out


class TestPapermillLifecycleOnKubernetes(OnKubernetes, test_papermill.TestPapermillLifecycle):
    """The lifecycle suite, on the emulated cluster: submit, abort, attach after a restart."""

    def case(self, tmp_path: Path) -> LifecycleCase:
        return self.placed(super().case(tmp_path))
