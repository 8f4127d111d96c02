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
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from plait.model.errors import PlaitError
from plait.model.status import Handle
from plait.model.wire import (
    CommandWork,
    ContainerWork,
    ObjectKind,
    ObjectRequest,
    ObjectWork,
    Placement,
)

ResultCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class ObjectState:
    """What a task type reads from its observed object: ``running``, ``succeeded`` or
    ``failed`` (with the object's own words), and which pod's container holds the log."""

    phase: Literal["running", "succeeded", "failed"]
    message: str = ""
    log_pod: str | None = None
    log_container: str | None = None


ObjectBuilder = Callable[[ObjectRequest], dict[str, Any]]
StateReader = Callable[[dict[str, Any]], ObjectState]


class Platform:
    """Base class of platforms. Every method is safe to call again after an engine restart,
    from the handle alone (the handle is persisted; the platform object is not)."""

    name: ClassVar[str]
    places_work: ClassVar[bool] = False
    """True for a platform that places each attempt somewhere else (Kubernetes): it is given
    a :class:`~plait.model.wire.Placement` with every Python attempt, and resolves the task's
    secrets where the work runs (a Secret reference), so the engine passes their names only
    and never needs their values."""

    def prepare(self, blob_url: str) -> None:
        """Check, before an execution starts here, that this platform can run it (its
        configuration, that its work can reach the blob store ``blob_url``); raise a
        PlaitError saying what to change. Called once per execution; cheap after the first."""

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

    def submit_python(self, job_id: str, payload: dict[str, Any], done: ResultCallback,
                      placement: Placement | None = None) -> None:
        """Run a Python attempt (see :func:`plait.runtime.attempt.run_attempt`); call ``done(result)``.

        ``placement`` says what the attempt is and needs (its image, resources, secrets), for a
        platform that places work; a platform that runs everything alike ignores it.
        """
        raise NotImplementedError

    def submit_container(self, job_id: str, work: ContainerWork, done: ResultCallback,
                         placement: Placement) -> None:
        """Run a container task's attempt where the platform places work (its image, its
        inputs fetched and outputs stored by the platform's own steps); call ``done(result)``
        with a result as :func:`plait.runtime.attempt.run_attempt` gives. Only a platform that
        ``places_work`` is asked; ``cancel_python``, ``attach_python`` and ``waiting`` take
        its job ids as well."""
        raise PlaitError(f"the {self.name} platform does not run container tasks in their images")

    def submit_object(self, job_id: str, work: ObjectWork, build: ObjectBuilder, state: StateReader,
                      done: ResultCallback, placement: Placement) -> None:
        """Run a process task's attempt as an object of the platform's own (a SparkApplication,
        a PyTorchJob): ``build`` makes it from an :class:`~plait.model.wire.ObjectRequest`,
        ``state`` reads an observed object; ``done(result)`` gets the result its entrypoint
        wrote. ``cancel_python`` and ``waiting`` take its job id; :meth:`attach_object`
        follows it after a restart."""
        raise PlaitError(f"the {self.name} platform does not run task types as objects of their own")

    def attach_object(self, job_id: str, kind: ObjectKind, state: StateReader, done: ResultCallback,
                      placement: Placement) -> bool:
        """Follow an object a previous engine created for ``job_id``; False if there is none."""
        return False

    def attach_python(self, job_id: str, done: ResultCallback, placement: Placement) -> bool:
        """After an engine restart, follow a Python attempt a previous engine submitted.

        Return False when the platform cannot (the local platform's workers died with their
        engine): the attempt then counts as lost and is retried.
        """
        return False

    def waiting(self, job_id: str) -> str | None:
        """Why a submitted Python attempt has not started yet (a full quota), or None."""
        return None

    def warm_up(self) -> None:
        """Start, in the background, what running Python attempts needs (a worker pool), so that
        the first attempt does not wait for it; ``plait run`` asks before it compiles. Optional."""

    takes_chunks: ClassVar[bool] = False
    """True for a platform whose :meth:`submit_python_chunk` runs a chunk of items as one unit
    of work (the local worker pool): the engine then hands it a map's quick items in chunks."""

    def submit_python_chunk(self, jobs: list[tuple[str, dict[str, Any], ResultCallback]]) -> None:
        """Run several Python attempts (a map's items) one after another as one unit of work,
        calling each job's callback with its result as it ends; ``cancel_python`` takes any of
        their job ids. Asked only of a platform that sets ``takes_chunks``."""
        for job_id, payload, done in jobs:
            self.submit_python(job_id, payload, done)

    def cancel_python(self, job_id: str) -> None:
        """Stop a Python attempt: dequeue it, or kill what runs it."""
        raise NotImplementedError

    def collect(self) -> None:
        """Deliver finished Python attempts now, for a caller without a running event loop."""

    def python_slots(self, items: int | None = None) -> int:
        """How many Python attempts run at once (for a map of ``items`` items, when given: a
        platform that packs several items into one unit of work runs more of them at once)."""
        raise NotImplementedError

    def execution_ended(self, execution_id: str, project: str, domain: str, phase: str) -> None:
        """An execution that ran here ended (``succeeded``, ``failed``, ``aborted``): sweep up
        anything of it still running. Called once, by the engine that ran it to its end."""

    def close(self) -> None:
        """Stop what this platform started for this process (worker pools, watches)."""

