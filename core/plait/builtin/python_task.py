"""The ``python`` task type: a Python function, run by the execution's platform or inline.

On the local platform an attempt runs in a pool of worker processes (one per core, or
``PLAIT_WORKERS``); with ``inline`` it runs in the engine's own process, for debugging.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from typing import Any

from plait.hookspecs import hookimpl
from plait.model.settings import default_workers
from plait.model.spec import TaskTemplate
from plait.model.status import ErrorKind, Handle, Phase, Status
from plait.plugins.tasktype import AttemptContext, TaskType
from plait.runtime.attempt import run_attempt
from plait.runtime.payload import attempt_payload, placement, status_of, write_logs


class PythonTask(TaskType):
    """Runs ``@task`` functions. Every hook returns at once: the platform runs the attempt."""

    name = "python"
    blocking = False
    uses_python_slots = True

    def __init__(self) -> None:
        self._results: dict[str, dict[str, Any] | None] = {}

    def capacity(self, inline: bool) -> int | None:
        return 1 if inline else int(os.environ.get("PLAIT_WORKERS") or default_workers())

    def submit(self, ctx: AttemptContext, task: TaskTemplate) -> Handle:
        job = ctx.attempt_id
        handle = {"job": job, "platform": ctx.platform.name}  # a PythonHandle; a dict: one per map item
        if job in self._results:
            return handle  # the same attempt again: attach to it
        payload = attempt_payload(ctx, task)
        self._results[job] = None
        if ctx.inline:
            self._results[job] = _run_inline(payload, ctx)
        else:
            if ctx.platform.places_work:
                ctx.platform.submit_python(job, payload, self._on_done(job, ctx), placement(ctx, task))
            else:  # a platform written before placements takes three arguments
                ctx.platform.submit_python(job, payload, self._on_done(job, ctx))
        return handle

    def _on_done(self, job: str, ctx: AttemptContext) -> Callable[[dict[str, Any]], None]:
        def done(result: dict[str, Any]) -> None:
            write_logs(ctx, result)
            if job in self._results:
                self._results[job] = result
                ctx.notify()

        return done

    def poll(self, ctx: AttemptContext, handle: Handle) -> Status:
        job = handle["job"]
        if job not in self._results:  # submitted by an engine that stopped
            if ctx.inline or not ctx.platform.attach_python(job, self._on_done(job, ctx), placement(ctx)):
                return Status.failed(
                    "this attempt's worker is gone (the engine that started it stopped)",
                    retryable=True, error_kind=ErrorKind.SYSTEM)
            self._results.setdefault(job, None)
        result = self._results[job]
        if result is None and not ctx.inline:
            ctx.platform.collect()  # without a running event loop nobody else picks results up
            result = self._results[job]
        if result is None:
            waiting = None if ctx.inline else ctx.platform.waiting(job)
            return Status(Phase.WAITING_FOR_RESOURCES, waiting) if waiting else Status(Phase.RUNNING)
        if result.get("status") == "aborted":
            return Status(Phase.ABORTED, "aborted")
        return status_of(result)

    def abort(self, ctx: AttemptContext, handle: Handle) -> None:
        job = handle["job"]
        if self._results.get(job, {}) is None:
            if not ctx.inline:
                ctx.platform.cancel_python(job)
            self._results[job] = {"status": "aborted"}

    def cleanup(self, ctx: AttemptContext, handle: Handle) -> None:
        self._results.pop(handle["job"], None)


def _run_inline(payload: dict[str, Any], ctx: AttemptContext) -> dict[str, Any]:
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        result = run_attempt(payload)
    except BaseException as exc:  # sys.exit() in a task must not end the engine
        if isinstance(exc, KeyboardInterrupt):
            raise
        result = {"status": "failed", "message": f"{type(exc).__name__}: {exc}", "retryable": True,
                  "error_kind": "user"}
    finally:
        sys.stdout, sys.stderr = saved
    result["stdout"], result["stderr"] = out.getvalue(), err.getvalue()
    write_logs(ctx, result)
    return result


@hookimpl
def plait_task_types(register: Callable[[TaskType], None]) -> None:
    register(PythonTask())
