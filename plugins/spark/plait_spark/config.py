"""Configuration of a Spark task: the knobs users set on Spark on Kubernetes."""

from __future__ import annotations

import os

from plait import TaskConfig
from pydantic import ConfigDict, field_validator


class Spark(TaskConfig):
    """Driver and executors, Spark and Hadoop configuration, extra jars and Python files.

    On the local platform the task gets a SparkSession on ``local[N]`` with N the executors'
    cores (``executor_instances * executor_cores``), capped at this machine's cores.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    task_type = "spark"

    driver_cores: int = 1
    driver_memory: str = "1g"
    executor_cores: int = 1
    executor_memory: str = "1g"
    executor_instances: int = 2
    spark_conf: dict[str, str] = {}
    hadoop_conf: dict[str, str] = {}
    jars: list[str] = []
    py_files: list[str] = []
    dynamic_allocation: bool = False
    """On Kubernetes: let Spark add and remove executors, between ``min_executors`` and
    ``max_executors`` (``executor_instances`` is the initial count)."""
    min_executors: int = 1
    max_executors: int | None = None
    service_account: str | None = None
    """On Kubernetes: the driver's service account, which must be allowed to create executor
    pods (the Spark operator's chart makes one); default: the platform's."""
    main_file: str | None = None
    """On Kubernetes: where plait_spark's driver entrypoint is in the image (default: where
    it is installed here, as ``local://...``: an image built like this environment)."""

    @field_validator("driver_cores", "executor_cores", "executor_instances")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    def local_threads(self) -> int:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, min(self.executor_instances * self.executor_cores, cores))
