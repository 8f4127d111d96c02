"""Who holds and who waits for each pool, attempt by attempt, and how the tokens were shared.

``plait pools`` counts holders and waiters per tenant (:mod:`plait.service.pools`); the
console's pools page also names each one (its execution and node, a waiter's place in the
queue) and plots each tenant's share over the last hour. Both read the same attempt events
the engine records: an attempt that needs tokens carries its ``pools`` and ``tenant`` on
every event, is ``waiting_for_resources`` (with its position) until it has them, and holds
them from its next event until it ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from plait.model.events import Event
from plait.storage.events import ENDED, EventStore, executions

WAITING = "waiting_for_resources"


@dataclass(frozen=True)
class PoolClaim:
    """One attempt's claim on a pool: ``holding`` its ``count`` tokens, or waiting for them,
    ``position`` in its tenant's queue (1: its tenant's next) when it began to wait, with
    ``queued`` requests then waiting in the whole pool."""

    pool: str
    tenant: str
    execution_id: str
    node: str
    count: int
    holding: bool
    since: float
    position: int | None = None
    queued: int | None = None


@dataclass(frozen=True)
class PoolShare:
    """Token-seconds per pool and tenant over ``start``..``end``, in ``len(slots)`` equal slots:
    ``slots[i][pool][tenant]`` is what that tenant held of that pool in slot ``i``."""

    start: float
    end: float
    slots: list[dict[str, dict[str, float]]]

    def totals(self) -> dict[str, dict[str, float]]:
        """Token-seconds per pool and tenant over the whole window."""
        out: dict[str, dict[str, float]] = {}
        for slot in self.slots:
            for pool, tenants in slot.items():
                for tenant, seconds in tenants.items():
                    out.setdefault(pool, {})[tenant] = out.setdefault(pool, {}).get(tenant, 0.0) + seconds
        return out


def _node(event: Event) -> str:
    node = str(event.data.get("node", event.entity))
    return f"{node}[{event.data['index']}]" if "index" in event.data else node


def _attempt_events(store: EventStore, execution_ids: list[str]) -> Iterator[tuple[str, list[Event]]]:
    """Each attempt's (or map item's) events that carry pools, by attempt, in order."""
    for execution_id in execution_ids:
        by_attempt: dict[str, list[Event]] = {}
        for event in store.events(execution_id):
            if event.kind in ("attempt", "item") and "pools" in event.data:
                by_attempt.setdefault(event.entity, []).append(event)
        yield from by_attempt.items()


def pool_claims(store: EventStore) -> list[PoolClaim]:
    """Every token held and every request waiting, from the running executions' events
    (however old; one scan of their events, as ``plait pools`` does)."""
    with store.engine.connect() as conn:
        running = conn.execute(sa.select(executions.c.id).where(executions.c.phase == "running")
                               .order_by(executions.c.created)).scalars().all()
    claims: list[PoolClaim] = []
    for _attempt, events in _attempt_events(store, list(running)):
        latest = events[-1]
        if latest.phase.value in ENDED:
            continue
        holding = latest.phase.value != WAITING
        since = next((e.ts for e in events if e.phase.value != WAITING), latest.ts) if holding else events[0].ts
        waiting: dict[str, Any] = latest.data.get("waiting") or {}
        for pool, count in latest.data["pools"].items():
            claims.append(PoolClaim(pool, str(latest.data["tenant"]), latest.execution_id, _node(latest), int(count),
                                    holding, since,
                                    None if holding else waiting.get("position"),
                                    None if holding else waiting.get("queued")))
    return claims


def pool_share(store: EventStore, window_s: float = 3600.0, slots: int = 12, now: float | None = None) -> PoolShare:
    """Token-seconds per pool and tenant over the last ``window_s`` seconds, in ``slots`` slots:
    an attempt holds its pools' tokens from its first event after waiting until it ends (or
    ``now`` if it has not). Reads the events of the executions running now or changed within
    the window."""
    end = time.time() if now is None else now
    start = end - window_s
    width = window_s / slots
    with store.engine.connect() as conn:
        recent = conn.execute(sa.select(executions.c.id).where(
            sa.or_(executions.c.phase == "running", executions.c.updated >= start))).scalars().all()
    out: list[dict[str, dict[str, float]]] = [{} for _ in range(slots)]
    for _attempt, events in _attempt_events(store, list(recent)):
        held_from = next((e.ts for e in events if e.phase.value != WAITING), None)
        if held_from is None:
            continue
        held_to = next((e.ts for e in events if e.phase.value in ENDED), end)
        first, last = max(held_from, start), min(held_to, end)
        tenant = str(events[-1].data["tenant"])
        for i in range(slots):
            lo, hi = max(first, start + i * width), min(last, start + (i + 1) * width)
            if hi <= lo:
                continue
            for pool, count in events[-1].data["pools"].items():
                tenants = out[i].setdefault(pool, {})
                tenants[tenant] = tenants.get(tenant, 0.0) + int(count) * (hi - lo)
    return PoolShare(start, end, out)
