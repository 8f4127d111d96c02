"""plait-spark on Kubernetes: the SparkApplication it builds, and how its states read."""

from __future__ import annotations

import plait
import pytest
import sparkflows
from plait.model.wire import ObjectRequest
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
