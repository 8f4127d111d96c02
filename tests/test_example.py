"""The example a new user runs first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_bigfoot_hunt_finds_the_planted_figures():
    result = subprocess.run(
        [sys.executable, "-m", "plait.cli", "run", "examples/bigfoot.py:hunt", "--photos", "600", "--batch-size", "50"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "map-detect: 12/12 items" in result.stdout
    out = result.stdout
    planted = int(out.split("planted=")[1].split(",")[0])
    found = int(out.split("found=")[1].split(",")[0])
    false_alarms = int(out.split("false_alarms=")[1].split(",")[0])
    assert planted > 0 and found == planted and false_alarms == 0


def test_the_mixed_example_runs_spark_then_sql_then_pytorch_then_a_notebook():
    result = subprocess.run(
        [sys.executable, "-m", "plait.cli", "run", "examples/mix.py:train_and_report", "--rows", "4000",
         "--epochs", "4", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for node in ("make_dataset", "clean_readings", "fit", "score", "model_report"):
        assert f"{node}: succeeded" in result.stdout
    assert '"summary": "y = 3.0' in result.stdout or '"summary": "y = 2.9' in result.stdout, result.stdout


def test_the_mixed_example_runs_unchanged_on_the_emulated_cluster(tmp_path: Path, pytorchjob_port: None):
    """examples/mix.py with --platform kubernetes: Spark as a SparkApplication, the query in the
    engine, PyTorch as a PyTorchJob, the scoring in a pod, the notebook in a pod; every value
    through S3 on the moto server."""
    import pytest

    pytest.importorskip("kubernetes", reason="the Kubernetes platform needs the kubernetes client: pip install kubernetes")
    from k8s_cluster import Cluster

    with Cluster(tmp_path / "cluster", operators=True) as cluster:
        result = subprocess.run(
            [sys.executable, "-m", "plait.cli", "run", "examples/mix.py:train_and_report", "--rows", "4000",
             "--epochs", "4", "--json", "--platform", "kubernetes"],
            cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
            env=cluster.engine_env(tmp_path / "home"))
        assert result.returncode == 0, result.stdout + result.stderr
        made = dict(cluster.kube.created)
    for node in ("make_dataset", "clean_readings", "fit", "score", "model_report"):
        assert f"{node}: succeeded" in result.stdout
    assert '"summary": "y = 3.0' in result.stdout or '"summary": "y = 2.9' in result.stdout, result.stdout
    assert made.get("SparkApplication") == 1 and made.get("PyTorchJob") == 1, made
    assert made.get("Pod") == 4, made  # score and the notebook in pods of their own, the driver, the master
