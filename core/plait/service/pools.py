"""Who holds and who waits for each rate-limited pool's tokens: what ``plait pools`` shows."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from plait.model.settings import hide_password
from plait.storage.events import EventStore, executions
from plait.tokens import token_manager
from plait.tokens.config import TokenConfig


def pool_usage(store: EventStore, config: TokenConfig) -> tuple[dict[str, dict[str, Any]], str]:
    """Each pool's holders and waiters by tenant, and where that was read from.

    With a Redis token backend, the live state of every engine sharing it; with in-process
    tokens, what the running executions in ``store`` recorded.
    """
    if config.url:
        manager = token_manager(config)
        try:
            return manager.snapshot(), hide_password(config.url)
        finally:
            manager.close()
    return pools_from_store(store), "running executions in the local store"


def pools_from_store(store: EventStore) -> dict[str, dict[str, Any]]:
    """Holders and waiters of in-process pools, from the events of every running execution
    (however old; run by an engine from the queue or by ``plait.run`` in a program)."""
    live: dict[str, dict[str, Any]] = {}
    with store.engine.connect() as conn:  # every running one, however old (a scan: `plait pools` is rare)
        running = conn.execute(sa.select(executions.c.id).where(executions.c.phase == "running")
                               .order_by(executions.c.created)).scalars().all()
    for execution_id in running:
        latest: dict[str, Any] = {}
        for event in store.events(execution_id):
            if event.kind in ("attempt", "item"):
                latest[event.entity] = event
        for event in latest.values():
            if "pools" not in event.data or event.phase not in ("running", "waiting_for_resources"):
                continue
            for pool, count in event.data["pools"].items():
                state = live.setdefault(pool, {"holders": {}, "waiters": {}})
                side = "holders" if event.phase == "running" else "waiters"
                tenant = event.data["tenant"]
                state[side][tenant] = state[side].get(tenant, 0) + (count if side == "holders" else 1)
    return live

