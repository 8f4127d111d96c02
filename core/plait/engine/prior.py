"""What an earlier run of an execution achieved, read from its events: what a resume keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from plait.model.events import Event
from plait.model.status import Handle, Phase

_ENDINGS = {p.value for p in Phase if p.terminal}

RECOVERABLE = frozenset({"failed", "aborted", "timed_out"})
"""The phases of an execution that recover may start again from (it ended, not successfully)."""


@dataclass
class _Prior:
    """What an earlier run of an execution achieved, read from its events."""

    node_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    item_outputs: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    attempts: dict[tuple[str, int | None], int] = field(default_factory=dict)
    open: dict[tuple[str, int | None], tuple[int, Handle]] = field(default_factory=dict)
    recovered_from: str | None = None
    """Set when these outputs are another execution's (recover): reusing one is then recorded."""

    @classmethod
    def of(cls, events: list[Event]) -> _Prior:
        prior = cls()
        for e in events:
            if e.kind == "node" and e.phase == "succeeded":
                prior.node_outputs[e.entity] = e.data.get("outputs") or {}
            elif e.kind in ("attempt", "item") and "attempt" in e.data:
                key = (e.data["node"], e.data.get("index"))
                number = e.data["attempt"]
                prior.attempts[key] = max(prior.attempts.get(key, 0), number)
                if e.phase == "running" and e.data.get("handle") is not None:
                    prior.open[key] = (number, e.data["handle"])
                elif e.phase in _ENDINGS and prior.open.get(key, (0,))[0] == number:
                    del prior.open[key]
                if e.kind == "item" and e.phase == "succeeded":
                    prior.item_outputs[(e.data["node"], e.data["index"])] = e.data.get("outputs") or {}
        return prior

    @classmethod
    def recovering(cls, execution_id: str, events: list[Event]) -> _Prior:
        """What a new execution keeps of ``execution_id`` (which failed): the outputs of every
        node and map item that succeeded there; its attempts are not carried on."""
        done = cls.of(events)
        return cls(node_outputs=done.node_outputs, item_outputs=done.item_outputs, recovered_from=execution_id)

