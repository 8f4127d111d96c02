"""The ``python`` task type: a Python function, run by the execution's platform or inline.

On the local platform an attempt runs in a pool of worker processes (one per core, or
``PLAIT_WORKERS``); with ``inline`` it runs in the engine's own process, for debugging.
"""

from __future__ import annotations

import functools
import io
import os
import sys
from collections.abc import Callable
from typing import Any

from plait.hookspecs import hookimpl
from plait.model.settings import default_workers
from plait.model.spec import TaskTemplate
from plait.model.status import Handle, Status
from plait.plugins.platform import ResultCallback
from plait.plugins.tasktype import AttemptContext, TaskType
from plait.runtime.attempt import run_attempt
from plait.runtime.payload import attempt_payload, placement, status_of, write_logs
from plait.runtime.placed import PlacedAttempts


class PythonTask(TaskType):
    """Runs ``@task`` functions. Every hook returns at once: the platform runs the attempt."""

    name = "python"
    blocking = False
    uses_python_slots = True

    def __init__(self) -> None:
        self._placed = PlacedAttempts()

    def capacity(self, inline: bool) -> int | None:
        return 1 if inline else int(os.environ.get("PLAIT_WORKERS") or default_workers())

    def submit(self, ctx: AttemptContext, task: TaskTemplate) -> Handle:
        job = ctx.attempt_id
        handle = {"job": job, "platform": ctx.platform.name}  # a PythonHandle; a dict: one per map item
        if job in self._placed:
            return handle  # the same attempt again: attach to it
        payload = attempt_payload(ctx, task)
        self._placed.placing(job)
        if ctx.inline:
            self._placed.finished(job, _run_inline(payload, ctx))
        else:
            done = self._placed.on_done(job, ctx)
            if ctx.platform.places_work:
                ctx.platform.submit_python(job, payload, done, placement(ctx, task))
            else:  # a platform written before placements takes three arguments
                ctx.platform.submit_python(job, payload, done)
        return handle

    def submit_chunk(self, ctxs: list[AttemptContext], task: TaskTemplate,
                     done: Callable[[int, Status], None]) -> list[Handle] | None:
        platform = ctxs[0].platform
        if not ctxs[0].inline and not platform.takes_chunks:
            return None
        handles: list[Handle] = [{"job": ctx.attempt_id, "platform": platform.name} for ctx in ctxs]
        jobs: list[tuple[str, dict[str, Any], ResultCallback]] = []
        for k, (ctx, handle) in enumerate(zip(ctxs, handles)):
            self._placed.placing(ctx.attempt_id)
            payload = attempt_payload(ctx, task)
            if ctx.inline:
                result = _run_inline(payload, ctx)
                self._placed.finished(ctx.attempt_id, result)
                done(k, status_of(result))
            else:  # the result is kept as a single attempt's is; its notify reports it to the chunk
                ctx.notify = functools.partial(self._report, ctx, handle, k, done)
                jobs.append((ctx.attempt_id, payload, self._placed.on_done(ctx.attempt_id, ctx)))
        if jobs:
            platform.submit_python_chunk(jobs)
        return handles

    def _report(self, ctx: AttemptContext, handle: Handle, k: int, done: Callable[[int, Status], None]) -> None:
        done(k, self.poll(ctx, handle))

    def poll(self, ctx: AttemptContext, handle: Handle) -> Status:
        job = handle["job"]

        def attach(done: ResultCallback) -> bool:  # submitted by an engine that stopped
            return not ctx.inline and ctx.platform.attach_python(job, done, placement(ctx))

        return self._placed.poll(ctx, job, attach,
                                 "this attempt's worker is gone (the engine that started it stopped)",
                                 collect=not ctx.inline)  # without a running event loop nobody else picks results up

    def abort(self, ctx: AttemptContext, handle: Handle) -> None:
        self._placed.abort(ctx, handle["job"], cancel=not ctx.inline)

    def cleanup(self, ctx: AttemptContext, handle: Handle) -> None:
        self._placed.forget(handle["job"])


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
