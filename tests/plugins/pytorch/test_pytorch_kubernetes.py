"""plait-pytorch on Kubernetes: the PyTorchJob it builds, and how its conditions read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import plait
import pytest
import test_pytorch
from k8s_cluster import OnKubernetes
from plait.model.wire import ObjectRequest
from plait.testing.lifecycle import LifecycleCase
from plait.testing.manifests import validate_manifest
from plait_pytorch import Elastic, PyTorch
from plait_pytorch.hooks import PyTorchTask

REQUEST = ObjectRequest(
    name="plait-20261201-x-train-1-ab12cd34ef", namespace="vision-production",
    labels={"plait.dev/execution": "20261201-x", "plait.dev/node": "train", "plait.dev/task-type": "pytorch"},
    image="ghcr.io/acme/train:2", python="python3", job_uri="s3://bucket/plait/k8s/y/job.json",
    env=[{"name": "PLAIT_SECRET_TOKEN", "valueFrom": {"secretKeyRef": {"name": "plait-secrets", "key": "token"}}}],
    resources={"requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "2"},
               "limits": {"memory": "16Gi", "nvidia.com/gpu": "2"}},
    tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
)

pytestmark = pytest.mark.usefixtures("pytorchjob_port")


def build(config: PyTorch) -> dict:
    @plait.task(plugin=config)
    def train(epochs: int) -> int:
        return epochs

    job = PyTorchTask().kubernetes_object(None, train.template, REQUEST)
    return {**job, "metadata": {"name": REQUEST.name, "namespace": REQUEST.namespace, "labels": REQUEST.labels}}


def test_a_job_of_three_nodes_has_a_master_and_two_workers_running_torchrun_on_plaits_rank_entrypoint():
    job = build(PyTorch(workers=3, nproc_per_node=2))
    validate_manifest(job)
    spec = job["spec"]
    assert spec["nprocPerNode"] == "2"
    replicas = spec["pytorchReplicaSpecs"]
    assert (replicas["Master"]["replicas"], replicas["Worker"]["replicas"]) == (1, 2)
    master = replicas["Master"]["template"]["spec"]["containers"][0]
    assert master["name"] == "pytorch" and master["image"] == "ghcr.io/acme/train:2"
    assert master["command"] == ["python3", "-m", "torch.distributed.run", "-m", "plait_pytorch.rank",
                                 "s3://bucket/plait/k8s/y/job.json"]
    assert master["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert master["ports"] == [{"name": "pytorchjob-port", "containerPort": 23456}]
    assert replicas["Worker"]["template"]["spec"]["tolerations"] == REQUEST.tolerations
    assert "elasticPolicy" not in spec


def test_an_elastic_job_has_workers_only_and_an_elastic_policy():
    job = build(PyTorch(nproc_per_node=1, elastic=Elastic(min_nodes=2, max_nodes=4, max_restarts=3)))
    validate_manifest(job)
    spec = job["spec"]
    assert list(spec["pytorchReplicaSpecs"]) == ["Worker"] and spec["pytorchReplicaSpecs"]["Worker"]["replicas"] == 4
    assert spec["elasticPolicy"] == {"rdzvBackend": "c10d", "minReplicas": 2, "maxReplicas": 4, "maxRestarts": 3}


@pytest.mark.parametrize(("conditions", "phase"), [
    ([], "running"),
    ([{"type": "Created", "status": "True"}], "running"),
    ([{"type": "Created", "status": "True"}, {"type": "Running", "status": "True"}], "running"),
    ([{"type": "Running", "status": "False"}, {"type": "Succeeded", "status": "True"}], "succeeded"),
    ([{"type": "Running", "status": "False"},
      {"type": "Failed", "status": "True", "reason": "PyTorchJobFailed", "message": "worker 1 exited 1"}], "failed"),
])
def test_each_condition_reads_as_a_phase(conditions, phase):
    job = {"metadata": {"name": "job"}, "spec": {"pytorchReplicaSpecs": {"Master": {}}},
           "status": {"conditions": conditions}}
    read = PyTorchTask().kubernetes_state(job)
    assert read.phase == phase and (read.log_pod, read.log_container) == ("job-master-0", "pytorch")
    if phase == "failed":
        assert "worker 1 exited 1" in read.message


# ---- end to end on the emulated cluster, with the simulated training operator ---------------

TRAINING = Path(__file__).resolve().parent / "training.py"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("kubernetes", reason="the Kubernetes platform needs the kubernetes client: pip install kubernetes")
    from k8s_cluster import Cluster

    with Cluster(tmp_path_factory.mktemp("cluster"), operators=True) as c:
        yield c


def run(cluster, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plait.cli", "run", *args, "--platform", "kubernetes", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=cluster.engine_env(home))


def test_a_two_node_job_runs_as_a_pytorchjob_whose_ranks_find_each_other(cluster, tmp_path: Path):
    seen: list[str] = []
    sub = cluster.kube.subscribe("pytorchjobs.kubeflow.org")
    try:
        done = run(cluster, tmp_path / "home", f"{TRAINING}:gather_nodes", "--tag", "k8s")
        while (event := sub.get(timeout=0.1)) is not None:
            kinds = [c["type"] for c in (event.object.get("status") or {}).get("conditions") or []
                     if c.get("status") == "True"]
            if kinds and (not seen or seen[-1] != kinds[-1]):
                seen.append(kinds[-1])
    finally:
        sub.close()
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout[done.stdout.index("{"):]) == {"o0": [0, 1]}, done.stdout
    assert cluster.kube.created["PyTorchJob"] >= 1
    assert seen[-1] == "Succeeded" and "Running" in seen, seen
    assert not cluster.kube.objects("pytorchjobs.kubeflow.org", "default-development"), "the job was not deleted"


def test_a_failing_rank_on_kubernetes_fails_the_attempt_naming_the_rank(cluster, tmp_path: Path):
    done = run(cluster, tmp_path / "home", f"{TRAINING}:failing", "--x", "3")
    assert done.returncode != 0
    out = " ".join((done.stdout + done.stderr).split())  # the console wraps long lines
    assert "rank 1 failed" in out and "rank 1 cannot handle 3" in out, out


class TestPyTorchLifecycleOnKubernetes(OnKubernetes, test_pytorch.TestPyTorchLifecycle):
    """The lifecycle suite, on the emulated cluster: submit, abort, attach after a restart."""

    def case(self, tmp_path: Path) -> LifecycleCase:
        return self.placed(super().case(tmp_path))
