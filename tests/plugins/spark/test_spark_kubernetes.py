"""plait-spark on Kubernetes: the SparkApplication it builds, and how its states read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import plait
import pytest
import sparkflows
import test_spark
from k8s_cluster import OnKubernetes
from plait.model.wire import ObjectRequest
from plait.testing.lifecycle import LifecycleCase
from plait.testing.manifests import validate_manifest
from plait_spark import Spark
from plait_spark.hooks import SparkTask

REQUEST = ObjectRequest(
    name="plait-20261201-x-numbers-1-ab12cd34ef", namespace="pricing-production",
    labels={"plait.dev/execution": "20261201-x", "plait.dev/node": "numbers", "plait.dev/task-type": "spark"},
    image="ghcr.io/acme/spark:3.5", python="python", job_uri="s3://bucket/plait/k8s/x/job.json",
    env=[{"name": "MODE", "value": "fast"},
         {"name": "PLAIT_SECRET_TOKEN", "valueFrom": {"secretKeyRef": {"name": "plait-secrets", "key": "token"}}}],
    env_from=[{"secretRef": {"name": "plait-blob"}}], service_account="plait-task",
    tolerations=[{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}],
)


def build(task) -> dict:
    manifest = SparkTask().kubernetes_object(None, task.template, REQUEST)
    return {**manifest, "metadata": {"name": REQUEST.name, "namespace": REQUEST.namespace, "labels": REQUEST.labels}}


def test_the_spark_application_is_valid_against_the_operators_crd_and_carries_the_config():
    app = build(sparkflows.numbers)
    validate_manifest(app)
    spec = app["spec"]
    assert spec["type"] == "Python" and spec["mode"] == "cluster" and spec["image"] == "ghcr.io/acme/spark:3.5"
    assert spec["mainApplicationFile"].startswith("local:///") and spec["mainApplicationFile"].endswith("plait_spark/run.py")
    assert spec["arguments"] == ["s3://bucket/plait/k8s/x/job.json"]
    assert spec["executor"]["instances"] == 2 and spec["sparkConf"] == {"spark.sql.session.timeZone": "UTC"}
    assert spec["driver"]["serviceAccount"] == "plait-task"
    secret = next(e for e in spec["driver"]["env"] if e["name"] == "PLAIT_SECRET_TOKEN")
    assert secret["valueFrom"]["secretKeyRef"] == {"name": "plait-secrets", "key": "token"}
    assert spec["executor"]["tolerations"] == REQUEST.tolerations
    assert "dynamicAllocation" not in spec


def test_dynamic_allocation_hadoop_conf_and_a_service_account_of_its_own_when_asked():
    @plait.task(plugin=Spark(dynamic_allocation=True, min_executors=1, max_executors=8, executor_instances=2,
                             hadoop_conf={"fs.s3a.fast.upload": "true"}, service_account="spark-operator-spark",
                             main_file="local:///opt/plait/run.py", driver_memory="2g"))
    def elastic(rows: int) -> int:
        return rows

    app = build(elastic)
    validate_manifest(app)
    spec = app["spec"]
    assert spec["dynamicAllocation"] == {"enabled": True, "initialExecutors": 2, "minExecutors": 1, "maxExecutors": 8}
    assert spec["hadoopConf"] == {"fs.s3a.fast.upload": "true"}
    assert spec["driver"]["serviceAccount"] == "spark-operator-spark" and spec["driver"]["memory"] == "2g"
    assert spec["mainApplicationFile"] == "local:///opt/plait/run.py"


@pytest.mark.parametrize(("state", "phase"), [
    ("", "running"), ("SUBMITTED", "running"), ("RUNNING", "running"), ("SUCCEEDING", "running"),
    ("PENDING_RERUN", "running"), ("FAILING", "running"), ("UNKNOWN", "running"),
    ("COMPLETED", "succeeded"), ("FAILED", "failed"), ("SUBMISSION_FAILED", "failed"),
])
def test_each_application_state_reads_as_a_phase(state, phase):
    app = {"metadata": {"name": "app"}, "status": {"applicationState": {"state": state, "errorMessage": "driver OOM"},
                                                   "driverInfo": {"podName": "app-driver"}}}
    read = SparkTask().kubernetes_state(app)
    assert read.phase == phase
    assert (read.log_pod, read.log_container) == ("app-driver", "spark-kubernetes-driver")
    if phase == "failed":
        assert state in read.message and "driver OOM" in read.message


# ---- end to end on the emulated cluster, with the simulated Spark operator -------------------

SPARKFLOWS = Path(__file__).resolve().parent / "sparkflows.py"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("kubernetes", reason="the Kubernetes platform needs the kubernetes client: pip install kubernetes")
    from k8s_cluster import Cluster

    with Cluster(tmp_path_factory.mktemp("cluster"), operators=True) as c:
        yield c


def run(cluster, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plait.cli", "run", *args, "--platform", "kubernetes"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=cluster.engine_env(home))


def test_spark_tasks_run_as_spark_applications_and_hand_frames_to_a_python_pod(cluster, tmp_path: Path):
    states: list[str] = []
    sub = cluster.kube.subscribe("sparkapplications.sparkoperator.k8s.io")
    before = cluster.kube.created["SparkApplication"]
    try:
        done = run(cluster, tmp_path / "home", f"{SPARKFLOWS}:round_trip", "--rows", "10")
        while (event := sub.get(timeout=0.1)) is not None:
            state = ((event.object.get("status") or {}).get("applicationState") or {}).get("state")
            if state and (not states or states[-1] != state):
                states.append(state)
    finally:
        sub.close()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "570" in done.stdout  # 2 * sum(i * i for i in range(10))
    assert cluster.kube.created["SparkApplication"] - before == 2  # numbers and back_in_spark
    assert "SUBMITTED" in states and "RUNNING" in states and states[-1] == "COMPLETED", states
    assert not cluster.kube.objects("sparkapplications.sparkoperator.k8s.io", "default-development"), "an application was left"


def test_a_spark_error_in_a_driver_is_the_tasks_failure_with_sparks_message(cluster, tmp_path: Path):
    done = run(cluster, tmp_path / "home", f"{SPARKFLOWS}:analysis_error", "--rows", "3")
    assert done.returncode != 0
    out = " ".join((done.stdout + done.stderr).split())  # the console wraps long lines
    assert "nope" in out and ("UNRESOLVED_COLUMN" in out or "cannot be resolved" in out), out
    # the driver's own report (the task's error), not the platform's account of an application
    # that ended without one
    assert "without reporting a result" not in out, out


class TestSparkLifecycleOnKubernetes(OnKubernetes, test_spark.TestSparkLifecycle):
    """The lifecycle suite, on the emulated cluster: submit, abort, attach after a restart."""

    def case(self, tmp_path: Path) -> LifecycleCase:
        return self.placed(super().case(tmp_path))
