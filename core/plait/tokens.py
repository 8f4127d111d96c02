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
import heapq
import itertools
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plait.errors import PlaitError


class TokenRequestError(PlaitError):
    """A request that can never be granted (more tokens than the pool or the tenant's cap)."""


@dataclass(frozen=True)
class PoolConfig:
    name: str
    capacity: int
    rate: float | None = None
    """Acquisitions per second (a token bucket holding up to ``capacity``), or unlimited."""


@dataclass
class TokenConfig:
    """Pools, tenant weights and caps, from plait.toml, [tool.plait] or the environment."""

    pools: dict[str, PoolConfig] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    caps: dict[str, dict[str, int]] = field(default_factory=dict)
    """tenant -> pool -> most tokens it may hold."""
    default_capacity: int = 16
    url: str | None = None
    """Where tokens live: None for this process, ``redis://host:port/db`` to share them."""
    lease_seconds: float = 30.0
    """How long a shared lease outlives its engine's last renewal (Redis only)."""

    def pool(self, name: str) -> PoolConfig:
        return self.pools.get(name) or PoolConfig(name, self.default_capacity)

    @classmethod
    def load(cls, directory: str | Path = ".") -> TokenConfig:
        """Read ``plait.toml`` (or ``[tool.plait]`` of ``pyproject.toml``), then the environment.

        ``PLAIT_POOLS="snowflake:acme=4,bigquery:p=10/2.5"`` sets capacities (and a rate after
        ``/``); ``PLAIT_TENANT_WEIGHTS="analytics/prod=2"`` sets weights.
        """
        root = Path(directory)
        data: dict[str, Any] = {}
        if (root / "plait.toml").is_file():
            data = tomllib.loads((root / "plait.toml").read_text())
        elif (root / "pyproject.toml").is_file():
            data = tomllib.loads((root / "pyproject.toml").read_text()).get("tool", {}).get("plait", {})
        config = cls(default_capacity=int(data.get("default_pool_capacity", 16)),
                     url=os.environ.get("PLAIT_TOKENS_URL") or data.get("tokens_url"),
                     lease_seconds=float(os.environ.get("PLAIT_TOKEN_LEASE_SECONDS")
                                         or data.get("token_lease_seconds", 30.0)))
        try:
            for name, spec in data.get("pools", {}).items():
                config.pools[name] = PoolConfig(name, int(spec["capacity"]), _rate(spec.get("rate")))
            for tenant, spec in data.get("tenants", {}).items():
                config.weights[tenant] = float(spec.get("weight", 1.0))
                config.caps[tenant] = {p: int(c) for p, c in spec.get("caps", {}).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise PlaitError(f"invalid [pools] or [tenants] in {root}: {exc!r}; expected for example "
                             '[pools."snowflake:acme"] capacity = 4, [tenants."team/prod"] weight = 2') from None
        for item in _env_list("PLAIT_POOLS"):
            name, _, setting = item.rpartition("=")
            capacity, _, rate = setting.partition("/")
            config.pools[name] = PoolConfig(name, int(capacity), _rate(rate or None))
        for item in _env_list("PLAIT_TENANT_WEIGHTS"):
            tenant, _, text = item.rpartition("=")
            config.weights[tenant] = float(text)
        for name, pool in config.pools.items():
            if pool.capacity < 1:
                raise PlaitError(f"pool {name!r} has capacity {pool.capacity}; it must be at least 1")
        for tenant, value in config.weights.items():
            if value <= 0:
                raise PlaitError(f"tenant {tenant!r} has weight {value}; it must be above 0")
        return config


def _rate(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def _env_list(name: str) -> list[str]:
    try:
        return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]
    except ValueError as exc:  # pragma: no cover - defensive
        raise PlaitError(f"{name} is malformed: {exc}") from None


# ---------------------------------------------------------------------------------------
# The allocation rule
# ---------------------------------------------------------------------------------------


@dataclass
class _Lease:
    tenant: str
    count: int


class Allocator:
    """One pool's holders and waiters, and the rule that decides who gets freed capacity."""

    def __init__(self, pool: PoolConfig, weights: dict[str, float] | None = None,
                 caps: dict[str, int] | None = None) -> None:
        self.pool = pool
        self.weights = weights or {}
        self.caps = caps or {}
        self.leases: dict[str, _Lease] = {}
        self.held: dict[str, int] = {}
        self.used = 0
        self.waiting: dict[str, list[tuple[int, int, str, int]]] = {}
        self._where: dict[str, str] = {}  # waiting lease -> its tenant
        self._seq = itertools.count()
        self._bucket = float(pool.capacity)
        self._filled_at: float | None = None

    def weight(self, tenant: str) -> float:
        return self.weights.get(tenant, 1.0)

    def cap(self, tenant: str) -> int:
        return self.caps.get(tenant, self.pool.capacity)

    def request(self, lease_id: str, tenant: str, count: int = 1, priority: int = 0,
                now: float = 0.0) -> list[str]:
        """Ask for ``count`` tokens; return the leases granted by this call (maybe this one).

        Asking again with the same ``lease_id`` changes nothing: it is held or still waiting.
        """
        if lease_id in self.leases or lease_id in self._where:
            return []
        self.check(tenant, count)
        heapq.heappush(self.waiting.setdefault(tenant, []), (-priority, next(self._seq), lease_id, count))
        self._where[lease_id] = tenant
        return self.grant(now)

    def check(self, tenant: str, count: int) -> None:
        """Raise TokenRequestError for a request no amount of waiting would grant."""
        limit = min(self.pool.capacity, self.cap(tenant))
        if count < 1 or count > limit:
            whose = "the pool's capacity" if limit == self.pool.capacity else f"tenant {tenant}'s cap"
            raise TokenRequestError(
                f"pool {self.pool.name!r}: a request for {count} tokens can never be granted; "
                f"{whose} is {limit}. Lower the request or raise the limit in plait.toml")

    def release(self, lease_id: str, now: float = 0.0) -> list[str]:
        """Return a lease's tokens (or withdraw a waiting request); return leases granted."""
        lease = self.leases.pop(lease_id, None)
        if lease is not None:
            self.held[lease.tenant] -= lease.count
            self.used -= lease.count
            return self.grant(now)
        tenant = self._where.pop(lease_id, None)
        if tenant is not None:
            queue = self.waiting[tenant]
            queue[:] = [r for r in queue if r[2] != lease_id]
            heapq.heapify(queue)
        return []

    def grant(self, now: float = 0.0) -> list[str]:
        """Hand free capacity to the fairest eligible waiting requests."""
        granted = []
        while self.used < self.pool.capacity:
            free = self.pool.capacity - self.used
            best: tuple[float, float, int, str] | None = None
            for tenant, queue in self.waiting.items():
                if not queue:
                    continue
                _, seq, _, count = queue[0]
                if count > free or self.held.get(tenant, 0) + count > self.cap(tenant):
                    continue
                held, weight = self.held.get(tenant, 0), self.weight(tenant)
                # Lowest held/weight first; among equals, the one that stays lowest after
                # the grant (the heavier tenant), then arrival order.
                key = (held / weight, (held + count) / weight, seq, tenant)
                if best is None or key < best:
                    best = key
            if best is None or not self._take_from_bucket(now):
                break
            tenant = best[3]
            _, _, lease_id, count = heapq.heappop(self.waiting[tenant])
            del self._where[lease_id]
            self.leases[lease_id] = _Lease(tenant, count)
            self.held[tenant] = self.held.get(tenant, 0) + count
            self.used += count
            granted.append(lease_id)
        return granted

    def _take_from_bucket(self, now: float) -> bool:
        rate = self.pool.rate
        if rate is None:
            return True
        if self._filled_at is not None:
            self._bucket = min(float(self.pool.capacity), self._bucket + (now - self._filled_at) * rate)
        self._filled_at = now
        if self._bucket >= 1.0:
            self._bucket -= 1.0
            return True
        return False

    def next_refill(self, now: float) -> float | None:
        """When a rate-limited pool can next grant, if requests wait only on its rate."""
        if self.pool.rate is None or not self._where or self._bucket >= 1.0:
            return None
        return now + (1.0 - self._bucket) / self.pool.rate

    def position(self, lease_id: str) -> tuple[int, int] | None:
        """(place in its tenant's queue from 1, requests waiting in the pool), if waiting."""
        tenant = self._where.get(lease_id)
        if tenant is None:
            return None
        order = sorted(self.waiting[tenant])
        place = next(i for i, r in enumerate(order, 1) if r[2] == lease_id)
        return place, len(self._where)

    def snapshot(self) -> dict[str, Any]:
        waiters: dict[str, int] = {}
        for tenant in self._where.values():
            waiters[tenant] = waiters.get(tenant, 0) + 1
        return {"capacity": self.pool.capacity, "rate": self.pool.rate, "used": self.used,
                "holders": {t: n for t, n in self.held.items() if n}, "waiters": waiters}


# ---------------------------------------------------------------------------------------
# In-process backend
# ---------------------------------------------------------------------------------------


class TokenManager:
    """Tokens for the pools of one engine process (the default backend)."""

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


def token_manager(config: TokenConfig) -> Any:
    """The backend ``config`` names: in-process by default, Redis for ``redis://`` URLs."""
    if config.url:
        if not config.url.startswith(("redis://", "rediss://", "unix://")):
            raise PlaitError(f"tokens_url {config.url!r} is not supported; use redis://host:port/db")
        from plait.tokens_redis import RedisTokenManager

        return RedisTokenManager(config.url, config, lease_seconds=config.lease_seconds)
    return TokenManager(config)


def jain_index(values: list[float]) -> float:
    """Jain's fairness index of ``values`` (1.0 is perfectly even)."""
    if not values or not any(values):
        return 1.0
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values))

