"""The platform contract: where a compute task type's work runs.

A compute task type (``python``, ``container``, ``spark``, ``pytorch``, ``papermill``)
describes its work once, as a command line (:class:`plait.model.wire.CommandWork`) or a
Python attempt payload, and hands it to ``ctx.platform``; it never starts or supervises a
process itself. ``local`` (processes and a worker pool on this machine) is built in;
``kubernetes`` comes the same way, through the ``plait_platforms`` hook. An execution runs on
one platform, chosen with ``plait run --platform NAME`` (default ``local``), and every handle
records its name.

Service task types (BigQuery, Snowflake, SageMaker) talk to their service and need no
platform; their offline stand-ins are their own, explicit choice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from plait.model.status import Handle
from plait.model.wire import CommandWork

ResultCallback = Callable[[dict[str, Any]], None]


class Platform:
    """Base class of platforms. Every method is safe to call again after an engine restart,
    from the handle alone (the handle is persisted; the platform object is not)."""

    name: ClassVar[str]

    # -- command lines ---------------------------------------------------------------------

    def start(self, work: CommandWork) -> Handle:
        """Start ``work`` unless work for its folder was started before (then attach); return the handle."""
        raise NotImplementedError

    def exit_code(self, handle: Handle) -> int | None:
        """The command's exit code, or None while it runs (-9 if it vanished without one)."""
        raise NotImplementedError

    def logs(self, handle: Handle) -> tuple[str, str]:
        """The end of the command's stdout and stderr."""
        raise NotImplementedError

    def log_paths(self, handle: Handle) -> dict[str, str]:
        """Where the full stdout and stderr are (paths or URLs), for the attempt's log links."""
        raise NotImplementedError

    def kill(self, handle: Handle) -> None:
        """Stop the command and everything it started; not an error if it already ended."""
        raise NotImplementedError

    def release(self, handle: Handle) -> None:
        """Forget what this process keeps about the command (after it was killed or ended)."""
        raise NotImplementedError

    # -- Python attempts -------------------------------------------------------------------

    def submit_python(self, job_id: str, payload: dict[str, Any], done: ResultCallback) -> None:
        """Run a Python attempt (see :func:`plait.runtime.attempt.run_attempt`); call ``done(result)``."""
        raise NotImplementedError

    def cancel_python(self, job_id: str) -> None:
        """Stop a Python attempt: dequeue it, or kill what runs it."""
        raise NotImplementedError

    def collect(self) -> None:
        """Deliver finished Python attempts now, for a caller without a running event loop."""

    def python_slots(self) -> int:
        """How many Python attempts run at once."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop what this platform started for this process (worker pools, watches)."""

