"""Tenant tokens shared by several engine processes, through Redis.

The same allocation rule as :class:`plait.tokens.Allocator`, as Lua scripts that Redis runs
atomically, so engines on several machines share one pool fairly. Leases expire: an engine
renews the leases and waiting requests it holds every few seconds, and one that died (kill -9,
a lost machine) stops renewing, so its tokens return to the pool after the lease time.
Needs the ``redis`` package (``pip install "plait[redis]"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from plait.model.errors import PlaitError
from plait.model.settings import hide_password
from plait.tokens.config import TokenConfig, TokenRequestError

# KEYS: none (every key is derived from the pool name, ARGV[1], so one pool is one hash slot).
# State of pool P:  P:leases   lease -> "tenant|count|expires_ms"
#                   P:held     tenant -> tokens held
#                   P:req      waiting lease -> "tenant|count|expires_ms"
#                   P:q:<t>    waiting leases of tenant t, scored by priority then arrival
#                   P:tenants  tenants with waiting requests
#                   P:meta     used, seq, bucket, filled_ms, capacity, rate
_COMMON = """
local P = ARGV[1]
local now = tonumber(ARGV[2])
local function split(s)
  local t = {}
  for part in string.gmatch(s, "([^|]+)") do t[#t + 1] = part end
  return t
end
local function used() return tonumber(redis.call('HGET', P .. ':meta', 'used') or '0') end
local function expire()
  -- a full scan at most every 100 ms per pool: expiry is measured in seconds anyway
  local last = tonumber(redis.call('HGET', P .. ':meta', 'expired_ms') or '0')
  if now - last < 100 then return end
  redis.call('HSET', P .. ':meta', 'expired_ms', now)
  local leases = redis.call('HGETALL', P .. ':leases')
  for i = 1, #leases, 2 do
    local f = split(leases[i + 1])
    if tonumber(f[3]) < now then
      redis.call('HDEL', P .. ':leases', leases[i])
      redis.call('HINCRBY', P .. ':held', f[1], -tonumber(f[2]))
      redis.call('HINCRBY', P .. ':meta', 'used', -tonumber(f[2]))
    end
  end
  local reqs = redis.call('HGETALL', P .. ':req')
  for i = 1, #reqs, 2 do
    local f = split(reqs[i + 1])
    if tonumber(f[3]) < now then
      redis.call('HDEL', P .. ':req', reqs[i])
      redis.call('ZREM', P .. ':q:' .. f[1], reqs[i])
    end
  end
end
local function bucket_take(capacity)
  local rate = tonumber(redis.call('HGET', P .. ':meta', 'rate') or '0')
  if rate <= 0 then return true end
  local b = tonumber(redis.call('HGET', P .. ':meta', 'bucket') or tostring(capacity))
  local at = tonumber(redis.call('HGET', P .. ':meta', 'filled_ms') or tostring(now))
  b = math.min(capacity, b + (now - at) / 1000.0 * rate)
  redis.call('HSET', P .. ':meta', 'filled_ms', now)
  if b >= 1 then
    redis.call('HSET', P .. ':meta', 'bucket', tostring(b - 1))
    return true
  end
  redis.call('HSET', P .. ':meta', 'bucket', tostring(b))
  return false
end
local function grant()
  local capacity = tonumber(redis.call('HGET', P .. ':meta', 'capacity'))
  while used() < capacity do
    local free = capacity - used()
    local best, bestkey1, bestkey2, bestseq = nil, nil, nil, nil
    for _, t in ipairs(redis.call('SMEMBERS', P .. ':tenants')) do
      local head = redis.call('ZRANGE', P .. ':q:' .. t, 0, 0, 'WITHSCORES')
      if #head == 0 then
        redis.call('SREM', P .. ':tenants', t)
      else
        local f = split(redis.call('HGET', P .. ':req', head[1]))
        local count = tonumber(f[2])
        local held = tonumber(redis.call('HGET', P .. ':held', t) or '0')
        local weight = tonumber(redis.call('HGET', P .. ':weights', t) or '1')
        local cap = tonumber(redis.call('HGET', P .. ':caps', t) or tostring(capacity))
        if count <= free and held + count <= cap then
          local k1, k2, seq = held / weight, (held + count) / weight, tonumber(head[2])
          if best == nil or k1 < bestkey1 or (k1 == bestkey1 and (k2 < bestkey2 or (k2 == bestkey2 and seq < bestseq))) then
            best, bestkey1, bestkey2, bestseq = {t, head[1], count, f[3]}, k1, k2, seq
          end
        end
      end
    end
    if best == nil or not bucket_take(capacity) then break end
    redis.call('ZREM', P .. ':q:' .. best[1], best[2])
    redis.call('HDEL', P .. ':req', best[2])
    redis.call('HSET', P .. ':leases', best[2], best[1] .. '|' .. best[3] .. '|' .. best[4])
    redis.call('HINCRBY', P .. ':held', best[1], best[3])
    redis.call('HINCRBY', P .. ':meta', 'used', best[3])
  end
end
local function position(lease, tenant)
  local rank = redis.call('ZRANK', P .. ':q:' .. tenant, lease)
  if rank == false then return {0, 0} end
  return {rank + 1, redis.call('HLEN', P .. ':req')}
end
"""

# ARGV: pool, now_ms, lease, tenant, count, priority, ttl_ms, capacity, rate, weight, cap
_ACQUIRE = _COMMON + """
local lease, tenant, count = ARGV[3], ARGV[4], tonumber(ARGV[5])
local priority, ttl = tonumber(ARGV[6]), tonumber(ARGV[7])
redis.call('HSET', P .. ':meta', 'capacity', ARGV[8], 'rate', ARGV[9])
redis.call('HSET', P .. ':weights', tenant, ARGV[10])
if ARGV[11] ~= '' then redis.call('HSET', P .. ':caps', tenant, ARGV[11]) end
expire()
local held = redis.call('HGET', P .. ':leases', lease)
if held then
  local f = split(held)
  redis.call('HSET', P .. ':leases', lease, f[1] .. '|' .. f[2] .. '|' .. (now + ttl))
  return {1, 0, 0}
end
local waiting = redis.call('HGET', P .. ':req', lease)
if not waiting then
  local seq = redis.call('HINCRBY', P .. ':meta', 'seq', 1)
  redis.call('ZADD', P .. ':q:' .. tenant, -priority * 1e12 + seq, lease)
  redis.call('SADD', P .. ':tenants', tenant)
end
redis.call('HSET', P .. ':req', lease, tenant .. '|' .. count .. '|' .. (now + ttl))
grant()
if redis.call('HEXISTS', P .. ':leases', lease) == 1 then return {1, 0, 0} end
local pos = position(lease, tenant)
return {0, pos[1], pos[2]}
"""

# ARGV: pool, now_ms, lease
_RELEASE = _COMMON + """
local lease = ARGV[3]
local held = redis.call('HGET', P .. ':leases', lease)
if held then
  local f = split(held)
  redis.call('HDEL', P .. ':leases', lease)
  redis.call('HINCRBY', P .. ':held', f[1], -tonumber(f[2]))
  redis.call('HINCRBY', P .. ':meta', 'used', -tonumber(f[2]))
else
  local waiting = redis.call('HGET', P .. ':req', lease)
  if waiting then
    local f = split(waiting)
    redis.call('HDEL', P .. ':req', lease)
    redis.call('ZREM', P .. ':q:' .. f[1], lease)
  end
end
expire()
if redis.call('HEXISTS', P .. ':meta', 'capacity') == 1 then grant() end
return 1
"""

# ARGV: pool, now_ms, ttl_ms, lease...
_RENEW = _COMMON + """
local ttl = tonumber(ARGV[3])
for i = 4, #ARGV do
  for _, h in ipairs({':leases', ':req'}) do
    local v = redis.call('HGET', P .. h, ARGV[i])
    if v then
      local f = split(v)
      redis.call('HSET', P .. h, ARGV[i], f[1] .. '|' .. f[2] .. '|' .. (now + ttl))
    end
  end
end
return 1
"""


class RedisTokenManager:
    """Tokens in Redis, shared by every engine pointed at the same server."""

    shared = True
    """Other engine processes hold leases in the same pools: a lease id may be theirs now."""

    def __init__(self, url: str, config: TokenConfig | None = None, lease_seconds: float = 30.0,
                 prefix: str = "plait:pool:") -> None:
        try:
            import redis
        except ImportError:
            raise PlaitError(f"tokens at {url} need the redis client: pip install 'plait[redis]'") from None
        self.url = url
        self.config = config or TokenConfig()
        self.lease_ms = int(lease_seconds * 1000)
        self.prefix = prefix
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self._acquire = self.client.register_script(_ACQUIRE)
        self._release = self.client.register_script(_RELEASE)
        self._renew = self.client.register_script(_RENEW)
        self._mine: dict[str, set[str]] = {}  # pool -> leases this engine holds or waits for
        self._renewer: asyncio.Task[None] | None = None

    def check(self, pool: str, tenant: str, count: int) -> None:
        """Raise TokenRequestError for a request no amount of waiting would grant."""
        capacity = self.config.pool(pool).capacity
        cap = self.config.caps.get(tenant, {}).get(pool, capacity)
        limit = min(capacity, cap)
        if count < 1 or count > limit:
            whose = "the pool's capacity" if limit == capacity else f"tenant {tenant}'s cap"
            raise TokenRequestError(f"pool {pool!r}: a request for {count} tokens can never be granted; "
                                    f"{whose} is {limit}. Lower the request or raise the limit in plait.toml")

    def _call(self, script: Any, *args: Any) -> Any:
        try:
            return script(args=[self.prefix + args[0], int(time.time() * 1000), *args[1:]])
        except Exception as exc:
            raise PlaitError(f"the token store at {hide_password(self.url)} failed: {type(exc).__name__}: {exc}") from exc

    def try_acquire(self, pool: str, tenant: str, lease_id: str, count: int = 1,
                    priority: int = 0) -> tuple[bool, int, int]:
        """One atomic attempt: (granted, place in the tenant's queue, requests waiting)."""
        self.check(pool, tenant, count)
        spec = self.config.pool(pool)
        cap = self.config.caps.get(tenant, {}).get(pool)
        granted, place, queued = self._call(
            self._acquire, pool, lease_id, tenant, count, priority, self.lease_ms, spec.capacity,
            spec.rate or 0, self.config.weights.get(tenant, 1.0), "" if cap is None else cap)
        self._mine.setdefault(pool, set()).add(lease_id)
        return bool(granted), int(place), int(queued)

    async def acquire(self, pool: str, tenant: str, lease_id: str, count: int = 1, priority: int = 0,
                      on_wait: Any = None) -> None:
        """Wait until ``lease_id`` holds ``count`` tokens of ``pool`` (polling Redis)."""
        self._start_renewing()
        interval = 0.02
        told = False
        try:
            while True:
                granted, place, queued = await asyncio.to_thread(
                    self.try_acquire, pool, tenant, lease_id, count, priority)
                if granted:
                    return
                if not told and on_wait is not None:
                    on_wait(place, queued)
                    told = True
                await asyncio.sleep(interval)
                interval = min(interval * 1.5, 0.5)
        except BaseException:
            self.release(pool, lease_id)
            raise

    def release(self, pool: str, lease_id: str) -> None:
        self._call(self._release, pool, lease_id)
        self._mine.get(pool, set()).discard(lease_id)

    def renew(self) -> None:
        """Extend every lease and waiting request this engine holds."""
        for pool, leases in list(self._mine.items()):
            if leases:
                self._call(self._renew, pool, self.lease_ms, *sorted(leases))

    def _start_renewing(self) -> None:
        loop = asyncio.get_running_loop()
        if self._renewer is None or self._renewer.done() or self._renewer.get_loop() is not loop:
            self._renewer = loop.create_task(self._renew_periodically())

    async def _renew_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            with contextlib.suppress(PlaitError):
                await asyncio.to_thread(self.renew)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every pool in this Redis: capacity, tokens held and requests waiting per tenant."""
        out: dict[str, dict[str, Any]] = {}
        client: Any = self.client
        for key in sorted(client.scan_iter(f"{self.prefix}*:meta")):
            pool = key[len(self.prefix):-len(":meta")]
            meta = client.hgetall(key)
            held = {t: int(n) for t, n in client.hgetall(f"{self.prefix}{pool}:held").items() if int(n)}
            waiters: dict[str, int] = {}
            for value in client.hvals(f"{self.prefix}{pool}:req"):
                tenant = value.split("|")[0]
                waiters[tenant] = waiters.get(tenant, 0) + 1
            out[pool] = {"capacity": int(meta.get("capacity", 0)), "rate": float(meta.get("rate") or 0) or None,
                         "used": int(meta.get("used", 0)), "holders": held, "waiters": waiters}
        return out

    def detach(self) -> None:
        """An execution's event loop is ending: stop renewing from it."""
        if self._renewer is not None:
            self._renewer.cancel()
            self._renewer = None

    def close(self) -> None:
        self.detach()
        self.client.close()
