"""The allocation rule, as plain synchronous state: time is passed in, nothing is awaited."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from typing import Any

from plait.tokens.config import PoolConfig, TokenRequestError


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
            # The withdrawn request may have been its tenant's head, too big for the free
            # tokens: the one behind it may fit now (as Redis's script grants it).
            return self.grant(now)
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


def jain_index(values: list[float]) -> float:
    """Jain's fairness index of ``values`` (1.0 is perfectly even)."""
    if not values or not any(values):
        return 1.0
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values))

