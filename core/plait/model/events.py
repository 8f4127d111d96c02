"""Events: every state change of an execution, as the engine appends them to the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from plait.model.status import Phase

EventKind = Literal["execution", "node", "attempt", "item", "graph", "cleanup"]
"""What an event is about: the execution, a node, a task attempt, a map item's attempt, the
sub-workflow of a dynamic node, or an attempt's failed cleanup."""


@dataclass(slots=True)
class Event:
    """One state change. ``entity`` is "" for the execution, a node path, or an attempt id.

    A ``graph`` event records the sub-workflow a dynamic node compiled (entity ``PATH#graph``);
    a ``cleanup`` event, a task type's cleanup that failed (entity ``ATTEMPT#cleanup``).
    """

    execution_id: str
    kind: EventKind
    entity: str
    phase: Phase
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = 0.0
    run: int = 0
    """0 for the first run of an execution, 1 for its first resume, and so on."""

