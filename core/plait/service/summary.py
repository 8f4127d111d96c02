"""What ``plait executions show``, ``events`` and ``plait pools`` print, as typed models: the
same whether the command line reads the local store or asks a server (which answers with these)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plait.model.api.executions import (
    AttemptSummary,
    EventOut,
    ExecutionRow,
    ExecutionSummary,
    NodeSummary,
    PoolUsage,
)
from plait.model.events import Event
from plait.service.logs import log_links
from plait.service.pools import pool_usage
from plait.service.query import execution_tags_of
from plait.storage.events import ENDED, EventStore, replay
from plait.tokens.config import TokenConfig


def execution_summary(store: EventStore, row: dict[str, Any]) -> ExecutionSummary:
    """The execution ``row`` (from the store) with its state replayed from its events."""
    state = replay(row["id"], store.events(row["id"]))
    nodes = []
    for node in state.nodes.values():
        attempts = [AttemptSummary(number=a.number, phase=a.phase, message=a.message, error_kind=a.error_kind,
                                   waiting=a.waiting, cleanup_error=a.cleanup_error,
                                   log_links=log_links(a, row["project"], row["domain"], row["id"]))
                    for a in node.attempts]
        nodes.append(NodeSummary(node=node.node, phase=node.phase, cached=node.cached, error=node.error,
                                 items=node.items, item_counts={k: v for k, v in node.item_counts.items() if v},
                                 item_errors=dict(sorted(node.item_errors.items())[:10]), attempts=attempts))
    return ExecutionSummary(execution=ExecutionRow(**row), phase=state.phase, tags=execution_tags_of(store, row),
                            inputs=state.inputs, outputs=state.outputs if state.phase == "succeeded" else None,
                            error=state.error, failed_node=state.failed_node, nodes=nodes)


def event_out(seq: int, event: Event) -> EventOut:
    return EventOut(seq=seq, run=event.run, ts=event.ts, kind=event.kind, entity=event.entity,
                    phase=event.phase.value, data=event.data)


def ends_execution(event: EventOut) -> bool:
    """Whether ``event`` is the execution's own end (a stream following it stops there)."""
    return event.kind == "execution" and event.phase in ENDED


def pools_usage(store: EventStore, config: TokenConfig,
                may_see: Callable[[str], bool] = lambda _tenant: True) -> tuple[list[PoolUsage], str]:
    """Each pool's capacity and its holders and waiters by tenant (``project/domain``), keeping
    only the tenants ``may_see`` allows; and where the state was read."""
    live, source = pool_usage(store, config)
    found = []
    for name in sorted(set(live) | set(config.pools)):
        pool = config.pool(name)
        state = live.get(name, {})
        found.append(PoolUsage(
            name=name, capacity=state.get("capacity") or pool.capacity, rate=pool.rate,
            holders={t: n for t, n in state.get("holders", {}).items() if may_see(t)},
            waiters={t: n for t, n in state.get("waiters", {}).items() if may_see(t)}))
    return found, source
