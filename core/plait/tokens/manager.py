"""Tenant tokens: fair sharing of rate-limited services, enforced by the core for every plugin.

A *pool* (``snowflake:acme``) has a capacity and optionally a rate (acquisitions per second).
A task type declares which pools an attempt holds (:meth:`plait.tasktype.TaskType.pools`);
the engine acquires the tokens before ``submit`` and releases them after ``cleanup``, so no
plugin can forget. A tenant is a (project, domain) pair with a weight and optional hard caps.

When capacity frees it goes to the waiting request of the tenant whose held tokens divided by
its weight is lowest (weighted max-min fairness); a tenant may use idle capacity beyond its
share but never beyond its cap; running work is never pre-empted; within a tenant, higher
priority first, then arrival order. :class:`Allocator` is that rule as plain, synchronous
state (so it can be tested exhaustively); :class:`TokenManager` puts it behind asyncio.
"""

from __future__ import annotations

import asyncio
from typing import Any

from plait.tokens.allocator import Allocator
from plait.tokens.config import TokenConfig

# ---------------------------------------------------------------------------------------
# The allocation rule
# ---------------------------------------------------------------------------------------






# ---------------------------------------------------------------------------------------
# In-process backend
# ---------------------------------------------------------------------------------------


class TokenManager:
    """Tokens for the pools of one engine process (the default backend)."""

    shared = False
    """Whether other engine processes hold leases in the same pools (they do not, here)."""

    def __init__(self, config: TokenConfig | None = None) -> None:
        self.config = config or TokenConfig()
        self.pools: dict[str, Allocator] = {}
        self._granted: dict[str, asyncio.Future[None]] = {}
        self._refills: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle]] = {}
        """pool -> its one pending wake-up for requests that wait on its rate alone."""

    def check(self, pool: str, tenant: str, count: int) -> None:
        """Raise TokenRequestError for a request no amount of waiting would grant."""
        self.allocator(pool).check(tenant, count)

    def detach(self) -> None:
        """An execution's event loop is ending (nothing to do in-process)."""

    def close(self) -> None:
        """Release process-wide resources (none in-process)."""

    def allocator(self, pool: str) -> Allocator:
        alloc = self.pools.get(pool)
        if alloc is None:
            caps = {t: c[pool] for t, c in self.config.caps.items() if pool in c}
            alloc = self.pools[pool] = Allocator(self.config.pool(pool), self.config.weights, caps)
        return alloc

    async def acquire(self, pool: str, tenant: str, lease_id: str, count: int = 1, priority: int = 0,
                      on_wait: Any = None) -> None:
        """Wait until ``lease_id`` holds ``count`` tokens of ``pool``.

        ``on_wait(position, waiting)`` is called once if the request has to queue.
        """
        loop = asyncio.get_running_loop()
        alloc = self.allocator(pool)
        key = f"{pool}\0{lease_id}"
        if lease_id in alloc.leases:
            return
        future = self._granted.get(key)
        if future is None:
            future = self._granted[key] = loop.create_future()
            self._wake(pool, alloc.request(lease_id, tenant, count, priority, loop.time()))
        if not future.done():
            if on_wait is not None:
                place = alloc.position(lease_id)
                if place is not None:
                    on_wait(*place)
            self._schedule_refill(pool, alloc)
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                self.release(pool, lease_id)
                raise
        self._granted.pop(key, None)

    def release(self, pool: str, lease_id: str) -> None:
        """Give back ``lease_id``'s tokens of ``pool`` (or stop waiting for them)."""
        alloc = self.pools.get(pool)
        if alloc is None:
            return
        self._granted.pop(f"{pool}\0{lease_id}", None)
        now = asyncio.get_event_loop().time() if self._running_loop() else 0.0
        self._wake(pool, alloc.release(lease_id, now))
        if self._running_loop():  # freed capacity the bucket cannot fill yet: come back when it can
            self._schedule_refill(pool, alloc)

    def _wake(self, pool: str, granted: list[str]) -> None:
        for lease_id in granted:
            future = self._granted.get(f"{pool}\0{lease_id}")
            if future is not None and not future.done():
                future.set_result(None)

    def _schedule_refill(self, pool: str, alloc: Allocator) -> None:
        loop = asyncio.get_running_loop()
        when = alloc.next_refill(loop.time())
        pending = self._refills.get(pool)
        if when is None or (pending is not None and pending[0] is loop and pending[1].when() <= when):
            return
        if pending is not None:
            pending[1].cancel()
        self._refills[pool] = (loop, loop.call_at(when, self._refill, pool, alloc))

    def _refill(self, pool: str, alloc: Allocator) -> None:
        loop = asyncio.get_running_loop()
        self._refills.pop(pool, None)
        self._wake(pool, alloc.grant(loop.time()))
        self._schedule_refill(pool, alloc)

    @staticmethod
    def _running_loop() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {name: alloc.snapshot() for name, alloc in sorted(self.pools.items())}





