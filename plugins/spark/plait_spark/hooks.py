"""The ``spark`` task type and the Spark DataFrame type, registered through plait's hooks."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plait import AttemptContext, TaskType, hookimpl
from plait.sdk import (
    ObjectKind,
    ObjectRequest,
    ObjectState,
    ProcessTask,
    TaskTemplate,
    TypeTransformer,
)

from plait_spark import run
from plait_spark.config import Spark


def _spark_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pyspark")
    except PackageNotFoundError:  # the engine needs no Spark: the image has it
        return "3.5.0"


SPARK_APPLICATION = ObjectKind(group="sparkoperator.k8s.io", version="v1beta2", plural="sparkapplications",
                               kind="SparkApplication")

RUNNING_STATES = ("", "SUBMITTED", "RUNNING", "PENDING_RERUN", "INVALIDATING", "SUCCEEDING", "FAILING", "UNKNOWN")
"""SparkApplication states on the way to an end (see the README's table)."""


class SparkTask(ProcessTask):
    """Runs the task's function in its own process with a local SparkSession (its JVM too);
    on Kubernetes, as a SparkApplication of the Spark operator."""

    name = "spark"
    config_model = Spark
    kubernetes_kind = SPARK_APPLICATION

    def kubernetes_object(self, ctx: AttemptContext, task: TaskTemplate, request: ObjectRequest) -> dict[str, Any]:
        spark = Spark.model_validate(task.config)
        main = spark.main_file or f"local://{Path(run.__file__).resolve()}"
        labels = dict(request.labels)
        env = [*request.env, {"name": "PLAIT_SPARK_ON_KUBERNETES", "value": "1"}]
        driver: dict[str, Any] = {"cores": spark.driver_cores, "memory": spark.driver_memory, "labels": labels,
                                  "env": env, "envFrom": request.env_from}
        executor: dict[str, Any] = {"cores": spark.executor_cores, "memory": spark.executor_memory,
                                    "instances": spark.executor_instances, "labels": labels, "env": env,
                                    "envFrom": request.env_from}
        account = spark.service_account or request.service_account
        if account:
            driver["serviceAccount"] = account
        for role in (driver, executor):
            if request.node_selector:
                role["nodeSelector"] = request.node_selector
            if request.tolerations:
                role["tolerations"] = request.tolerations
        spec: dict[str, Any] = {
            "type": "Python", "pythonVersion": "3", "mode": "cluster", "image": request.image,
            "imagePullPolicy": "IfNotPresent", "mainApplicationFile": main, "arguments": [request.job_uri],
            "sparkVersion": _spark_version(), "restartPolicy": {"type": "Never"},
            "driver": driver, "executor": executor,
        }
        if spark.spark_conf:
            spec["sparkConf"] = dict(spark.spark_conf)
        if spark.hadoop_conf:
            spec["hadoopConf"] = dict(spark.hadoop_conf)
        if spark.jars or spark.py_files:
            spec["deps"] = {k: v for k, v in (("jars", spark.jars), ("pyFiles", spark.py_files)) if v}
        if request.image_pull_secrets:
            spec["imagePullSecrets"] = list(request.image_pull_secrets)
        if spark.dynamic_allocation:
            spec["dynamicAllocation"] = {
                "enabled": True, "initialExecutors": spark.executor_instances,
                "minExecutors": spark.min_executors,
                "maxExecutors": spark.max_executors or max(spark.executor_instances, spark.min_executors)}
        return {"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "SparkApplication", "spec": spec}

    def kubernetes_state(self, obj: dict[str, Any]) -> ObjectState:
        status = obj.get("status") or {}
        app = status.get("applicationState") or {}
        state = str(app.get("state") or "")
        driver = (status.get("driverInfo") or {}).get("podName") or f"{obj['metadata']['name']}-driver"
        where = {"log_pod": driver, "log_container": "spark-kubernetes-driver"}
        if state == "COMPLETED":
            return ObjectState("succeeded", state, **where)
        if state in ("FAILED", "SUBMISSION_FAILED"):
            return ObjectState("failed", f"{state}: {app.get('errorMessage') or 'no message'}", **where)
        return ObjectState("running", state or "NEW", **where)

    def command(self, ctx: AttemptContext, task: TaskTemplate, job: Path) -> list[str]:
        return [sys.executable, "-m", "plait_spark.run", str(job)]

    def environment(self, ctx: AttemptContext, task: TaskTemplate) -> dict[str, str]:
        return {**task.env, "SPARK_LOCAL_IP": "127.0.0.1"}


@hookimpl
def plait_task_types(register: Callable[[TaskType], None]) -> None:
    register(SparkTask())


@hookimpl
def plait_types(register: Callable[[TypeTransformer], None]) -> None:
    from plait_spark.types import SparkFrames

    register(SparkFrames())
