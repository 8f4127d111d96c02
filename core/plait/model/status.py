"""Phases and statuses: what the engine, the store and every task type say about progress."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

Handle = dict[str, Any]
"""What ``submit`` returns: a small JSON-serialisable dict, persisted in the event log."""


class Phase(str, enum.Enum):
    """The phase of an execution, a node or a task attempt."""

    QUEUED = "queued"
    WAITING_FOR_RESOURCES = "waiting_for_resources"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    ABORTED = "aborted"
    SKIPPED = "skipped"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL

    def __str__(self) -> str:  # "succeeded", in messages and f-strings, not "Phase.SUCCEEDED"
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


_TERMINAL = {Phase.SUCCEEDED, Phase.FAILED, Phase.TIMED_OUT, Phase.ABORTED, Phase.SKIPPED}


class ErrorKind(str, enum.Enum):
    """Whose fault a failure is; each kind has its own retry budget."""

    USER = "user"
    SYSTEM = "system"


@dataclass(frozen=True)
class Status:
    """What ``poll`` reports about one attempt.

    A failed job is a status, not an exception: ``phase=FAILED`` with ``retryable`` saying
    whether another attempt could succeed and ``error_kind`` whose budget it spends.
    ``outputs`` (literals, see :mod:`plait.types`) is set when ``phase`` is SUCCEEDED.
    ``log_links`` names where the attempt's logs are (``{"stdout": path or URL}``).
    """

    phase: Phase
    message: str = ""
    outputs: dict[str, Any] | None = None
    retryable: bool = True
    error_kind: ErrorKind = ErrorKind.USER
    log_links: dict[str, str] = field(default_factory=dict)

    @classmethod
    def succeeded(cls, outputs: dict[str, Any], message: str = "", log_links: dict[str, str] | None = None) -> Status:
        return cls(Phase.SUCCEEDED, message, outputs=outputs, log_links=log_links or {})

    @classmethod
    def failed(
        cls,
        message: str,
        *,
        retryable: bool = True,
        error_kind: ErrorKind = ErrorKind.USER,
        log_links: dict[str, str] | None = None,
    ) -> Status:
        return cls(Phase.FAILED, message, retryable=retryable, error_kind=error_kind, log_links=log_links or {})

