"""The ``spark`` task type and the Spark DataFrame type, registered through plait's hooks."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from plait import AttemptContext, TaskType, hookimpl
from plait.sdk import ProcessTask, TaskTemplate, TypeTransformer

from plait_spark.config import Spark


class SparkTask(ProcessTask):
    """Runs the task's function in its own process with a local SparkSession (its JVM too)."""

    name = "spark"
    config_model = Spark

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
