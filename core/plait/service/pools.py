"""Who holds and who waits for each rate-limited pool's tokens: what ``plait pools`` shows."""

from __future__ import annotations

from typing import Any

from plait.model.settings import hide_password
from plait.service.pool_activity import pool_claims
from plait.storage.events import EventStore
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
    for claim in pool_claims(store):
        state = live.setdefault(claim.pool, {"holders": {}, "waiters": {}})
        side = "holders" if claim.holding else "waiters"
        state[side][claim.tenant] = state[side].get(claim.tenant, 0) + (claim.count if claim.holding else 1)
    return live
