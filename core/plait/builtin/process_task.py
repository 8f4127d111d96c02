"""A task type whose attempt is one supervised command line: the pattern of most plugins.

The command reads ``job.json`` from its folder and writes ``result.json`` there; the
execution's platform (``ctx.platform``) runs it (on the local platform a supervised process
group, so submitting again attaches and abort kills the whole tree), and this class turns
the result into a status. A subclass describes only the work:

    class SparkTask(ProcessTask):
        name = "spark"
        config_model = Spark

        def command(self, ctx, task, job):
            return [sys.executable, "-m", "plait_spark.run", str(job)]

The command's side reads the job with :func:`read_job`, calls
:func:`plait.sdk.run_attempt` with its ``payload`` (the Python task to run) and
:func:`write_result`.

``job.json`` stays on disk, so it never holds a secret's value: the attempt's secrets reach
the command only through the platform (locally its environment, read and removed by
:func:`read_job`, which puts them back into the payload).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from plait.model.spec import TaskTemplate
from plait.model.status import ErrorKind, Handle, Phase, Status
from plait.model.wire import AttemptPayload, AttemptResult, CommandWork, ProcessTaskHandle
from plait.plugins.tasktype import AttemptContext, TaskType
from plait.runtime.payload import attempt_payload, status_of


class ProcessTask(TaskType):
    """Base class: override :meth:`command`, and :meth:`job` or :meth:`result` if needed."""

    # -- what a subclass describes ---------------------------------------------------------

    def command(self, ctx: AttemptContext, task: TaskTemplate, job: Path) -> list[str]:
        """The command line that runs the attempt, given the path of its ``job.json``."""
        raise NotImplementedError

    def job(self, ctx: AttemptContext, task: TaskTemplate, folder: Path) -> dict[str, Any]:
        """What the command reads from ``job.json`` (default: the task's config and Python payload)."""
        return {"config": task.config, "payload": attempt_payload(ctx, task)}

    def environment(self, ctx: AttemptContext, task: TaskTemplate) -> dict[str, str]:
        """Extra environment variables for the command."""
        return dict(task.env)

    def result(self, ctx: AttemptContext, handle: Handle, result: dict[str, Any]) -> Status:
        """Turn the command's ``result.json`` into a status (default: a run_attempt result).

        Read through :class:`plait.model.wire.AttemptResult`: the command may come from another
        install (an image), and a result it cannot describe is an error that says so.
        """
        return status_of(AttemptResult.model_validate(result).model_dump(exclude_none=True))

    def failure(self, ctx: AttemptContext, handle: Handle, code: int) -> Status:
        """The status when the command exited without writing a result."""
        _, stderr = ctx.platform.logs(handle)
        lines = [line for line in stderr.strip().splitlines() if not line.strip().startswith("at ")]
        tail = "\n".join(lines[-30:])
        return Status.failed(f"the {self.name} process exited with code {code} before reporting a result:\n{tail}",
                             error_kind=ErrorKind.SYSTEM)

    # -- the task-type hooks ---------------------------------------------------------------

    def submit(self, ctx: AttemptContext, task: TaskTemplate) -> Handle:
        folder = ctx.folder / self.name
        folder.mkdir(parents=True, exist_ok=True)
        job = folder / "job.json"
        if not job.exists():  # submitting again attaches: the job stays as it was
            content = {"workdir": str(folder), **self.job(ctx, task, folder)}
            if isinstance(content.get("payload"), dict):  # typed and versioned; secrets never serialised
                content["payload"] = AttemptPayload.model_validate(content["payload"]).model_dump(mode="json")
            job.write_text(json.dumps(content))
        work = CommandWork(folder=str(folder / "process"), argv=self.command(ctx, task, job),
                           env=self.environment(ctx, task), secrets=ctx.secrets)
        return ProcessTaskHandle(**ctx.platform.start(work), job=str(folder)).model_dump()

    def poll(self, ctx: AttemptContext, handle: Handle) -> Status:
        code = ctx.platform.exit_code(handle)
        if code is None:
            return Status(Phase.RUNNING)
        result = Path(ProcessTaskHandle.model_validate(handle).job) / "result.json"
        if result.exists():
            return self.result(ctx, handle, json.loads(result.read_text()))
        return self.failure(ctx, handle, code)

    def abort(self, ctx: AttemptContext, handle: Handle) -> None:
        ctx.platform.kill(handle)

    def cleanup(self, ctx: AttemptContext, handle: Handle) -> None:
        ctx.platform.kill(handle)
        ctx.platform.release(handle)




