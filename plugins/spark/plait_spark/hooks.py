"""The ``spark`` task type and the Spark DataFrame type, registered through plait's hooks."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from plait import AttemptContext, Status, TaskType, hookimpl
from plait.builtin.python_task import attempt_payload, status_of
from plait.local import LocalProcess
from plait.spec import TaskTemplate
from plait.tasktype import ErrorKind, Handle, Phase
from plait.types import TypeTransformer

from plait_spark.config import Spark


class SparkTask(TaskType):
    """Runs the task's function in its own process with a local SparkSession."""

    name = "spark"
    config_model = Spark

    def __init__(self) -> None:
        self.processes = LocalProcess()

    def submit(self, ctx: AttemptContext, task: TaskTemplate) -> Handle:
        workdir = ctx.folder / "spark"
        workdir.mkdir(parents=True, exist_ok=True)
        job = workdir / "job.json"
        if not job.exists():
            job.write_text(json.dumps({"workdir": str(workdir), "config": task.config,
                                       "payload": attempt_payload(ctx, task)}))
        handle = self.processes.start(workdir / "process", [sys.executable, "-m", "plait_spark.run", str(job)],
                                      env={**task.env, "SPARK_LOCAL_IP": "127.0.0.1"})
        handle["spark"] = str(workdir)
        return handle

    def poll(self, ctx: AttemptContext, handle: Handle) -> Status:
        code = self.processes.exit_code(handle)
        if code is None:
            return Status(Phase.RUNNING)
        result = Path(handle["spark"]) / "result.json"
        if result.exists():
            return status_of(json.loads(result.read_text()))
        _, stderr = self.processes.logs(handle)
        tail = "\n".join(line for line in stderr.strip().splitlines()[-30:] if not line.strip().startswith("at "))
        return Status.failed(f"the Spark process exited with code {code}:\n{tail}", error_kind=ErrorKind.SYSTEM)

    def abort(self, ctx: AttemptContext, handle: Handle) -> None:
        self.processes.kill(handle)  # the JVM too: it inherits the process marker

    def cleanup(self, ctx: AttemptContext, handle: Handle) -> None:
        self.processes.kill(handle)
        self.processes.forget(handle)


@hookimpl
def plait_task_types(register: Callable[[TaskType], None]) -> None:
    register(SparkTask())


@hookimpl
def plait_types(register: Callable[[TypeTransformer], None]) -> None:
    from plait_spark.types import SparkFrames

    register(SparkFrames())
