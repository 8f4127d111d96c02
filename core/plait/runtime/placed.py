"""What a task type keeps of the attempts it handed to its platform, by job id.

A platform that runs work elsewhere (a worker pool, a pod, a SparkApplication) tells the task
type of an attempt's end through a callback; until then the attempt is running, or waiting for
room on the platform. After an engine restart the task type has no record of the attempt, and
asks the platform to attach to it again. The ``python``, ``container`` and ``process`` task
types keep these records the same way: with a :class:`PlacedAttempts` each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plait.model.status import ErrorKind, Phase, Status
from plait.plugins.platform import ResultCallback
from plait.plugins.tasktype import AttemptContext
from plait.runtime.payload import status_of, write_logs


class PlacedAttempts:
    """Each attempt's result once its platform reported it (None while it runs)."""

    def __init__(self) -> None:
        self._results: dict[str, dict[str, Any] | None] = {}

    def __contains__(self, job: str) -> bool:
        return job in self._results

    def __len__(self) -> int:
        return len(self._results)

    def placing(self, job: str) -> None:
        """``job`` is being handed to the platform: it runs until its result arrives."""
        self._results[job] = None

    def finished(self, job: str, result: dict[str, Any]) -> None:
        """``job`` ended with ``result`` without the platform (it ran in the engine)."""
        self._results[job] = result

    def on_done(self, job: str, ctx: AttemptContext) -> ResultCallback:
        """The callback the platform calls with the attempt's result: it keeps the attempt's
        logs, records the result (unless the attempt was forgotten meanwhile) and wakes the engine."""
        def done(result: dict[str, Any]) -> None:
            write_logs(ctx, result)
            if job in self._results:
                self._results[job] = result
                ctx.notify()

        return done

    def poll(self, ctx: AttemptContext, job: str, attach: Callable[[ResultCallback], bool], gone: str, *,
             read: Callable[[dict[str, Any]], Status] = status_of, collect: bool = False) -> Status:
        """The attempt's status. One this process has no record of (its engine restarted) is
        attached to with ``attach(callback)``, or failed, retryably, with the message ``gone``
        when that finds nothing. An ended attempt's result is read with ``read``; ``collect``
        asks the platform to pick up results first (no event loop does it while polling)."""
        if job not in self._results:
            if not attach(self.on_done(job, ctx)):
                return Status.failed(gone, retryable=True, error_kind=ErrorKind.SYSTEM)
            self._results.setdefault(job, None)
        result = self._results[job]
        if result is None and collect:
            ctx.platform.collect()
            result = self._results[job]
        if result is None:
            waiting = ctx.platform.waiting(job)
            return Status(Phase.WAITING_FOR_RESOURCES, waiting) if waiting else Status(Phase.RUNNING)
        if result.get("status") == "aborted":
            return Status(Phase.ABORTED, "aborted")
        return read(result)

    def abort(self, ctx: AttemptContext, job: str, cancel: bool = True) -> None:
        """Abort a running attempt (``cancel``: the platform stops it); an ended one stays as it ended."""
        if self._results.get(job, {}) is None:
            if cancel:
                ctx.platform.cancel_python(job)
            self._results[job] = {"status": "aborted"}

    def forget(self, job: str) -> None:
        """Drop the record (cleanup); a result arriving later is logged, not kept."""
        self._results.pop(job, None)
