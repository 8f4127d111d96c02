"""The simulated Spark and training operators (plait.testing.operators) on the emulated cluster.

Objects are created through the real client (CustomObjectsApi) against the emulator, whose
kinds come from the real CRDs in tests/data/crds; the operators create pods the simulated
kubelet runs as real processes: a local-mode PySpark driver, gloo ranks of torch. What is
checked is what a plugin sees (the object's status sequence, the pods) and what happened on
this machine (files the programs wrote, processes).
"""

from __future__ import annotations

import functools
import json
import os
import socket
import sys
import time
from pathlib import Path

import pytest
import yaml

kubernetes = pytest.importorskip("kubernetes")
from engine_process import wait_for  # noqa: E402
from kubernetes.client import CustomObjectsApi  # noqa: E402
from plait.testing.kubeapi import KubeAPI  # noqa: E402
from plait.testing.kubelet import Kubelet  # noqa: E402
from plait.testing.lifecycle import alive  # noqa: E402
from plait.testing.manifests import validate_manifest  # noqa: E402
from plait.testing.operators import SparkOperator, TrainingOperator  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the simulated kubelet needs root")

NS = "default"
PY = sys.executable
CRDS = Path(__file__).resolve().parents[1] / "data" / "crds"
SPARK = ("sparkoperator.k8s.io", "v1beta2", "sparkapplications")
PYTORCH = ("kubeflow.org", "v1", "pytorchjobs")
APPS = "sparkapplications.sparkoperator.k8s.io"
JOBS = "pytorchjobs.kubeflow.org"


@functools.cache
def crd(filename):
    return yaml.load((CRDS / filename).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@pytest.fixture
def kube():
    with KubeAPI(graceful_pods=True) as api:
        for filename in ("sparkoperator.k8s.io_sparkapplications.yaml", "kubeflow.org_pytorchjobs.yaml"):
            api.install_crd(crd(filename))
        yield api


@pytest.fixture
def node(kube, tmp_path):
    venv_bin = str(Path(PY).parent)
    with Kubelet(kube, capacity={"cpu": "8", "memory": "16Gi"}, workdir=tmp_path / "node",
                 image_env={"PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin", "HOME": "/root"}) as kubelet:
        yield kubelet


@pytest.fixture
def custom(kube):
    return CustomObjectsApi(kube.api_client())


@pytest.fixture
def spark(kube, node):
    with SparkOperator(kube) as operator:
        yield operator
    for obj in operator.created:
        validate_manifest(obj, crds=[CRDS])


@pytest.fixture
def training(kube, node):
    with TrainingOperator(kube) as operator:
        yield operator
    for obj in operator.created:
        validate_manifest(obj, crds=[CRDS])


class subscribe:
    """The emulator's record of every change of ``resource``, from now on."""

    def __init__(self, kube, resource):
        self.kube, self.sub = kube, kube.subscribe(resource)
        self.get, self.close = self.sub.get, self.sub.close

    def diagnose(self):
        """What the pods show, for a failure's message."""
        return "; ".join(f"{p['metadata']['name']}: {(p.get('status') or {}).get('phase')} "
                         f"{(p.get('status') or {}).get('containerStatuses')}" for p in self.kube.objects("pods"))


def watch_states(sub, name, read, done, timeout=90.0):
    """Every distinct value of ``read(obj)`` the object goes through until ``done(obj)``, from
    the emulator's record of each change (a subscription taken before the object was made)."""
    seen: list = []
    deadline = time.monotonic() + timeout
    while True:
        event = sub.get(timeout=max(0.0, deadline - time.monotonic()))
        assert event is not None, f"{name} never finished; went through {seen}; {sub.diagnose()}"
        if event.object["metadata"]["name"] != name or event.type == "DELETED":
            continue
        value = read(event.object)
        if not seen or seen[-1] != value:
            seen.append(value)
        if done(event.object):
            sub.close()
            return seen, event.object


def app_state(obj):
    return ((obj.get("status") or {}).get("applicationState") or {}).get("state", "")


# ---- Spark ----------------------------------------------------------------------------------


def spark_app(name, script, arguments=(), **spec):
    app = {"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "SparkApplication",
           "metadata": {"name": name, "namespace": NS, "labels": {"plait.dev/execution": "e1"}},
           "spec": {"type": "Python", "mode": "cluster", "sparkVersion": "4.0.0", "image": "spark:4.0.0",
                    "mainApplicationFile": f"local://{script}", "arguments": list(arguments),
                    "sparkConf": {"spark.ui.enabled": "false"},
                    "hadoopConf": {"fs.permissions.umask-mode": "022"},
                    "driver": {"cores": 1, "memory": "512m", "serviceAccount": "spark",
                               "labels": {"role": "driver-of-test"},
                               "env": [{"name": "FROM_SPEC", "value": "yes"}]},
                    "executor": {"instances": 2, "cores": 1, "memory": "512m"},
                    **spec}}
    validate_manifest(app, crds=[CRDS])
    return app


COUNT_SCRIPT = """
import os, sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
sc = spark.sparkContext
n = spark.range(int(sys.argv[2])).count()
with open(sys.argv[1], "w") as fh:
    fh.write(f"{n} {sc.master} {sc.appName} {os.environ.get('FROM_SPEC')}")
spark.stop()
"""


def test_a_python_spark_application_runs_its_driver_in_local_mode_to_completed(kube, custom, spark, tmp_path):
    script = tmp_path / "count.py"
    script.write_text(COUNT_SCRIPT)
    out = tmp_path / "count.txt"
    sub = subscribe(kube, APPS)
    custom.create_namespaced_custom_object(*SPARK[:2], NS, SPARK[2], spark_app("count", script, [str(out), "1000"]))
    states, app = watch_states(sub, "count", app_state,
                               lambda o: app_state(o) in ("COMPLETED", "FAILED"))
    assert states == ["", "SUBMITTED", "RUNNING", "SUCCEEDING", "COMPLETED"], states
    status = app["status"]
    app_id = status["sparkApplicationId"]
    assert app_id.startswith("spark-") and status["submissionAttempts"] == 1
    assert status["driverInfo"]["podName"] == "count-driver"
    assert status["terminationTime"] and status["lastSubmissionAttemptTime"]
    assert "executorState" not in status and "errorMessage" not in status["applicationState"]
    assert out.read_text().split() == ["1000", "local[2]", "count", "yes"]

    pod = kube.get("pods", "count-driver", NS)
    assert pod["metadata"]["ownerReferences"][0]["uid"] == app["metadata"]["uid"]
    assert pod["metadata"]["ownerReferences"][0]["controller"] is True
    labels = pod["metadata"]["labels"]
    assert labels["spark-role"] == "driver" and labels["spark-app-selector"] == app_id
    assert labels["sparkoperator.k8s.io/app-name"] == "count" and labels["role"] == "driver-of-test"
    assert labels["plait.dev/execution"] == "e1"
    (container,) = pod["spec"]["containers"]
    assert container["name"] == "spark-kubernetes-driver" and container["image"] == "spark:4.0.0"
    assert container["resources"]["requests"] == {"cpu": "1", "memory": "896Mi"}  # 512 + max(0.4*512, 384)
    assert pod["spec"]["serviceAccountName"] == "spark"
    command = container["command"]
    assert command[1:5] == ["--master", "local[2]", "--deploy-mode", "client"]
    assert "spark.hadoop.fs.permissions.umask-mode=022" in command and "spark.ui.enabled=false" in command
    assert command[-3:] == [str(script), str(out), "1000"]


def test_a_failing_driver_fails_the_application_with_its_exit_code(kube, custom, spark, tmp_path):
    script = tmp_path / "fail.py"
    script.write_text("import sys\nsys.exit(3)\n")
    sub = subscribe(kube, APPS)
    custom.create_namespaced_custom_object(*SPARK[:2], NS, SPARK[2], spark_app("boom", script))
    states, app = watch_states(sub, "boom", app_state,
                               lambda o: app_state(o) in ("COMPLETED", "FAILED"))
    assert states[-2:] == ["FAILING", "FAILED"] and "RUNNING" in states, states
    assert app["status"]["applicationState"]["errorMessage"] == \
        "driver container failed with ExitCode: 3, Reason: Error"
    assert app["status"]["terminationTime"]


SLEEP_SCRIPT = """
import sys, time
open(sys.argv[1], "w").close()
time.sleep(600)
"""


def start_sleeping_driver(kube, custom, tmp_path, name):
    script = tmp_path / "sleep.py"
    script.write_text(SLEEP_SCRIPT)
    started = tmp_path / f"{name}.started"
    sub = subscribe(kube, APPS)
    custom.create_namespaced_custom_object(*SPARK[:2], NS, SPARK[2], spark_app(name, script, [str(started)]))
    assert kube.wait(lambda: app_state(kube.get(APPS, name, NS) or {}) == "RUNNING", 30)
    wait_for(started.exists, "the driver's script started", 60)
    return sub


def test_deleting_a_running_application_kills_its_driver(kube, custom, node, spark, tmp_path):
    start_sleeping_driver(kube, custom, tmp_path, "long")
    pids = node.pids(NS, "long-driver")
    assert pids
    custom.delete_namespaced_custom_object(*SPARK[:2], NS, SPARK[2], "long")
    assert kube.wait(lambda: kube.get("pods", "long-driver", NS) is None, 10)
    wait_for(lambda: not any(alive(p) for p in pids), "the driver's processes ended", 10)


def test_a_driver_pod_deleted_while_running_fails_the_application(kube, custom, node, spark, tmp_path):
    sub = start_sleeping_driver(kube, custom, tmp_path, "orphan")
    kube.delete("pods", "orphan-driver", NS, grace_period_seconds=0)
    states, app = watch_states(sub, "orphan", app_state,
                               lambda o: app_state(o) == "FAILED")
    assert app["status"]["applicationState"]["errorMessage"] == "driver pod not found"
    assert app["status"]["terminationTime"]


def test_an_application_the_simulation_cannot_run_fails_its_submission(kube, custom, spark, tmp_path):
    app = spark_app("scala", tmp_path / "x.jar", type="Scala", mainClass="org.example.Main")
    sub = subscribe(kube, APPS)
    custom.create_namespaced_custom_object(*SPARK[:2], NS, SPARK[2], app)
    states, done = watch_states(sub, "scala", app_state,
                                lambda o: app_state(o) == "FAILED", timeout=10)
    assert "SUBMISSION_FAILED" in states
    assert "only Python applications" in done["status"]["applicationState"]["errorMessage"]
    assert kube.get("pods", "scala-driver", NS) is None


# ---- PyTorchJob -----------------------------------------------------------------------------


GLOO_SCRIPT = """
import datetime, json, os, socket, sys
import torch
import torch.distributed as dist
dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=20))
t = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(t)
keys = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "PYTHONUNBUFFERED", "PET_NNODES",
        "PET_NODE_RANK", "PET_NPROC_PER_NODE")
with open(os.path.join(sys.argv[1], f"rank-{dist.get_rank()}.json"), "w") as fh:
    json.dump({"sum": t.item(), "env": {k: os.environ.get(k) for k in keys},
               "master_ip": socket.gethostbyname(os.environ["MASTER_ADDR"])}, fh)
dist.destroy_process_group()
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def replica(command, *, port=None, replicas=1):
    container = {"name": "pytorch", "image": "pytorch/pytorch:2.4.0", "command": list(command)}
    if port is not None:
        container["ports"] = [{"name": "pytorchjob-port", "containerPort": port}]
    return {"replicas": replicas, "restartPolicy": "Never",
            "template": {"metadata": {"labels": {"plait.dev/execution": "e1"}},
                         "spec": {"containers": [container]}}}


def pytorch_job(name, master, worker, **spec):
    job = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
           "metadata": {"name": name, "namespace": NS},
           "spec": {"pytorchReplicaSpecs": {"Master": master, "Worker": worker}, **spec}}
    validate_manifest(job, crds=[CRDS])
    return job


def conditions(obj):
    return {c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions") or []}


def condition_types(obj):
    return tuple(c["type"] for c in (obj.get("status") or {}).get("conditions") or [] if c["status"] == "True")


def test_a_pytorchjob_runs_its_ranks_with_gloo_through_the_masters_name(kube, custom, training, tmp_path):
    script = tmp_path / "allreduce.py"
    script.write_text(GLOO_SCRIPT)
    port = free_port()
    command = (PY, str(script), str(tmp_path))
    with pytest.raises(OSError):  # the master's name means nothing on this machine
        socket.gethostbyname("ddp-master-0")
    sub = subscribe(kube, JOBS)
    custom.create_namespaced_custom_object(*PYTORCH[:2], NS, PYTORCH[2], pytorch_job(
        "ddp", replica(command, port=port), replica(command)))
    seen, job = watch_states(sub, "ddp", condition_types,
                             lambda o: conditions(o).get("Succeeded") == "True" or conditions(o).get("Failed") == "True",
                             timeout=60)
    assert conditions(job) == {"Created": "True", "Running": "False", "Succeeded": "True"}, job["status"]
    assert ("Created",) in seen and ("Created", "Running") in seen, seen
    ranks = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [r["sum"] for r in ranks] == [3.0, 3.0]
    assert [r["master_ip"] for r in ranks] == ["127.0.0.1", "127.0.0.1"]
    assert [r["env"] for r in ranks] == [
        {"MASTER_ADDR": "ddp-master-0", "MASTER_PORT": str(port), "WORLD_SIZE": "2", "RANK": str(r),
         "PYTHONUNBUFFERED": "1", "PET_NNODES": "2", "PET_NODE_RANK": str(r), "PET_NPROC_PER_NODE": "auto"}
        for r in (0, 1)]
    status = job["status"]
    assert status["replicaStatuses"]["Master"]["succeeded"] == 1 and status["startTime"] and status["completionTime"]

    master, worker = kube.get("pods", "ddp-master-0", NS), kube.get("pods", "ddp-worker-0", NS)
    assert master["metadata"]["labels"]["training.kubeflow.org/replica-type"] == "master"
    assert master["metadata"]["labels"]["training.kubeflow.org/job-role"] == "master"
    assert worker["metadata"]["labels"]["training.kubeflow.org/replica-index"] == "0"
    assert worker["metadata"]["labels"]["plait.dev/execution"] == "e1"
    assert master["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    assert {"ip": "127.0.0.1", "hostnames": ["ddp-master-0", "ddp-worker-0"]} in master["spec"]["hostAliases"]
    svc = kube.get("services", "ddp-master-0", NS)
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["ports"] == [{"name": "pytorchjob-port", "port": port}]

    custom.delete_namespaced_custom_object(*PYTORCH[:2], NS, PYTORCH[2], "ddp")
    assert kube.wait(lambda: not kube.objects("pods", NS) and not kube.objects("services", NS), 10)


def test_a_replica_that_fails_fails_the_job_naming_it_and_running_pods_are_cleaned_up(
        kube, custom, node, training, tmp_path):
    started = tmp_path / "master.started"
    master = replica((PY, "-c", f"import time; open({str(started)!r}, 'w').close(); time.sleep(600)"),
                     port=free_port())
    worker = replica(("sh", "-c", f"while [ ! -e {started} ]; do sleep 0.05; done; exit 1"))
    sub = subscribe(kube, JOBS)
    custom.create_namespaced_custom_object(*PYTORCH[:2], NS, PYTORCH[2], pytorch_job(
        "bad", master, worker, runPolicy={"cleanPodPolicy": "Running"}))
    assert kube.wait(lambda: bool(node.pids(NS, "bad-master-0")), 30)
    pids = node.pids(NS, "bad-master-0")
    seen, job = watch_states(sub, "bad", condition_types,
                             lambda o: conditions(o).get("Failed") == "True")
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert failed["message"] == "PyTorchJob bad is failed because 1 Worker replica(s) failed."
    assert failed["reason"] == "PyTorchJobFailed"
    assert job["status"]["replicaStatuses"]["Worker"]["failed"] == 1
    assert kube.wait(lambda: kube.get("pods", "bad-master-0", NS) is None, 15)  # cleanPodPolicy Running
    assert kube.get("services", "bad-master-0", NS) is None
    assert kube.get("pods", "bad-worker-0", NS) is not None  # Failed: kept
    wait_for(lambda: not any(alive(p) for p in pids), "the master's processes ended", 10)
