"""Tenant tokens shared by several engine processes, through Redis.

The same allocation rule as :class:`plait.tokens.Allocator`, as Lua scripts that Redis runs
atomically, so engines on several machines share one pool fairly. Leases expire: an engine
renews the leases and waiting requests it holds every few seconds, and one that died (kill -9,
a lost machine) stops renewing, so its tokens return to the pool after the lease time.

An engine's requests travel in batches: what its attempts ask for or give back while one batch
is on its way goes in the next, one script call per pool that runs each request in arrival
order exactly as a call of its own would. The rule is unchanged; a busy engine pays a round
trip per batch rather than per request.
Needs the ``redis`` package (``pip install "plait[redis]"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import weakref
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
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
          local k1, k2, seq = held / weight, (held + count) / weight, tonumber(head[2]) % 1e12  -- arrival: across tenants, priority does not count
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

# The attempts that start or end together go to Redis as one batch: one call of this script
# per pool, running their requests in arrival order, each exactly as a call of its own would
# (the same `now`, so the rule sees what it would have seen had they come one by one).
# ARGV: pool, now_ms, ttl_ms, capacity, rate, then 7 per request:
#   'a', lease, tenant, count, priority, weight, cap ('' for none)   to acquire
#   'r', lease, and 5 empty strings                                   to release
# Returns 3 integers per request: granted, place in the tenant's queue, requests waiting.
_BATCH = _COMMON + """
local ttl = tonumber(ARGV[3])
local told = {}  -- tenants whose weight and cap this batch wrote (one engine's settings: once is enough)
local function acquire(lease, tenant, count, priority, weight, cap)
  if next(told) == nil then redis.call('HSET', P .. ':meta', 'capacity', ARGV[4], 'rate', ARGV[5]) end
  if told[tenant] == nil then
    told[tenant] = true
    redis.call('HSET', P .. ':weights', tenant, weight)
    if cap ~= '' then redis.call('HSET', P .. ':caps', tenant, cap) end
  end
  expire()
  local held = redis.call('HGET', P .. ':leases', lease)
  if held then
    local f = split(held)
    redis.call('HSET', P .. ':leases', lease, f[1] .. '|' .. f[2] .. '|' .. (now + ttl))
    return 1, 0, 0
  end
  local nobody_waits = redis.call('HLEN', P .. ':req') == 0
  if nobody_waits and tonumber(ARGV[5]) <= 0 then
    -- what grant() would do with this request alone in the queue, without queueing it
    local capacity = tonumber(ARGV[4])
    local mine = tonumber(redis.call('HGET', P .. ':held', tenant) or '0')
    local most = tonumber(redis.call('HGET', P .. ':caps', tenant) or ARGV[4])
    if count <= capacity - used() and mine + count <= most then
      redis.call('HSET', P .. ':leases', lease, tenant .. '|' .. count .. '|' .. (now + ttl))
      redis.call('HINCRBY', P .. ':held', tenant, count)
      redis.call('HINCRBY', P .. ':meta', 'used', count)
      return 1, 0, 0
    end
  end
  local waiting = (not nobody_waits) and redis.call('HGET', P .. ':req', lease)
  if not waiting then
    local seq = redis.call('HINCRBY', P .. ':meta', 'seq', 1)
    redis.call('ZADD', P .. ':q:' .. tenant, -priority * 1e12 + seq, lease)
    redis.call('SADD', P .. ':tenants', tenant)
  end
  redis.call('HSET', P .. ':req', lease, tenant .. '|' .. count .. '|' .. (now + ttl))
  grant()
  if redis.call('HEXISTS', P .. ':leases', lease) == 1 then return 1, 0, 0 end
  local pos = position(lease, tenant)
  return 0, pos[1], pos[2]
end
local function release(lease)
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
  -- with nothing waiting, grant() would find nobody to give the freed tokens to
  if redis.call('HLEN', P .. ':req') > 0 and redis.call('HEXISTS', P .. ':meta', 'capacity') == 1 then grant() end
  return 1, 0, 0
end
local out = {}
for i = 6, #ARGV, 7 do
  local a, b, c
  if ARGV[i] == 'a' then
    a, b, c = acquire(ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]), ARGV[i + 5], ARGV[i + 6])
  else
    a, b, c = release(ARGV[i + 1])
  end
  out[#out + 1] = a
  out[#out + 1] = b
  out[#out + 1] = c
end
return out
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


Request = tuple[str, list[Any]]
"""A pool, and its seven script arguments: an acquire (``'a'``, ...) or a release (``'r'``, ...)."""

_MOST_PER_CALL = 500
"""Requests per script call: Redis runs a script alone, so a huge batch is split to keep it short."""


class _Batch:
    """The requests one event loop makes while a batch is on its way; they go together next.

    One batch is in flight per loop at a time: whatever arrives meanwhile (every attempt that
    starts or ends in the same ticks) rides in the next, so a busy engine makes few round trips.
    """

    def __init__(self, manager: RedisTokenManager) -> None:
        self.manager = manager
        self.pending: list[tuple[Request, asyncio.Future[tuple[int, int, int]] | None]] = []
        self.sending: asyncio.Task[None] | None = None
        self.flying: Future[list[tuple[int, int, int]]] | None = None
        """The batch on its way to Redis, if any."""

    def add(self, request: Request, answer: asyncio.Future[tuple[int, int, int]] | None) -> None:
        self.pending.append((request, answer))
        if self.sending is None:  # starts on the next tick, after the attempts ready in this one
            self.sending = asyncio.get_running_loop().create_task(self._send_all())

    async def _send_all(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                job = self.flying = self.manager.worker.submit(self.manager.run, [r for r, _ in batch])
                try:
                    answers = await asyncio.shield(asyncio.wrap_future(job))
                except Exception as exc:
                    self._fail(batch, exc)
                else:
                    self._answer(batch, answers)
        except asyncio.CancelledError:  # the loop is closing: what is queued still goes, in order
            self.send_now()
            raise
        finally:
            self.sending = None

    def send_now(self) -> None:
        """Send what is queued from this thread, after the batch in flight; return when both are in."""
        batch, self.pending = self.pending, []
        if not batch:
            if self.flying is not None:
                futures.wait([self.flying])
            return
        try:
            answers = self.manager.worker.submit(self.manager.run, [r for r, _ in batch]).result()
        except Exception as exc:
            self._fail(batch, exc)
        else:
            self._answer(batch, answers)

    @staticmethod
    def _answer(batch: list[tuple[Request, Any]], answers: list[tuple[int, int, int]]) -> None:
        for (_, answer), value in zip(batch, answers, strict=True):
            if answer is not None and not answer.done():
                answer.set_result(value)

    @staticmethod
    def _fail(batch: list[tuple[Request, Any]], exc: Exception) -> None:
        for (pool, args), answer in batch:
            if answer is None:  # a release nobody awaits: its lease returns after the lease time
                print(f"plait: releasing lease {args[1]} of pool {pool!r} failed; it returns to the pool "
                      f"when its lease runs out: {exc}", file=sys.stderr)
            elif not answer.done():
                answer.set_exception(exc)


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
        self._batch = self.client.register_script(_BATCH)
        self._renew = self.client.register_script(_RENEW)
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="plait-tokens")
        """Sends the batches, one at a time and in order, off the event loop."""
        self._batches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batch] = weakref.WeakKeyDictionary()
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

    def run(self, requests: list[Request]) -> list[tuple[int, int, int]]:
        """Run ``requests`` in Redis, in order, in one script call per pool; return each answer."""
        by_pool: dict[str, list[int]] = {}
        for i, (pool, _) in enumerate(requests):
            by_pool.setdefault(pool, []).append(i)
        answers: list[tuple[int, int, int]] = [(0, 0, 0)] * len(requests)
        for pool, indices in by_pool.items():
            spec = self.config.pool(pool)
            for at in range(0, len(indices), _MOST_PER_CALL):
                part = indices[at:at + _MOST_PER_CALL]
                reply = self._call(self._batch, pool, self.lease_ms, spec.capacity, spec.rate or 0,
                                   *(arg for i in part for arg in requests[i][1]))
                for n, i in enumerate(part):
                    answers[i] = (int(reply[3 * n]), int(reply[3 * n + 1]), int(reply[3 * n + 2]))
        return answers

    def _acquiring(self, pool: str, tenant: str, lease_id: str, count: int, priority: int) -> Request:
        self.check(pool, tenant, count)
        cap = self.config.caps.get(tenant, {}).get(pool)
        self._mine.setdefault(pool, set()).add(lease_id)  # before it is sent: a release may follow at once
        return pool, ["a", lease_id, tenant, count, priority, self.config.weights.get(tenant, 1.0),
                      "" if cap is None else cap]

    def try_acquire(self, pool: str, tenant: str, lease_id: str, count: int = 1,
                    priority: int = 0) -> tuple[bool, int, int]:
        """One atomic attempt, now: (granted, place in the tenant's queue, requests waiting)."""
        granted, place, queued = self.run([self._acquiring(pool, tenant, lease_id, count, priority)])[0]
        return bool(granted), place, queued

    def _queue(self, loop: asyncio.AbstractEventLoop) -> _Batch:
        """The batch ``loop``'s requests join."""
        batch = self._batches.get(loop)
        if batch is None:
            batch = self._batches[loop] = _Batch(self)
        return batch

    async def acquire(self, pool: str, tenant: str, lease_id: str, count: int = 1, priority: int = 0,
                      on_wait: Any = None) -> None:
        """Wait until ``lease_id`` holds ``count`` tokens of ``pool`` (asking again until granted).

        Each ask joins the batch of the requests this engine makes at the same moment.
        """
        request = self._acquiring(pool, tenant, lease_id, count, priority)
        self._start_renewing()
        loop = asyncio.get_running_loop()
        interval = 0.02
        told = False
        try:
            while True:
                answer: asyncio.Future[tuple[int, int, int]] = loop.create_future()
                self._queue(loop).add(request, answer)
                granted, place, queued = await answer
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
        """Give back ``lease_id``'s tokens of ``pool`` (or stop waiting for them).

        On an event loop it joins the next batch and returns at once; elsewhere it is sent now.
        """
        self._mine.get(pool, set()).discard(lease_id)
        request: Request = (pool, ["r", lease_id, "", "", "", "", ""])
        loop = _running_loop()
        if loop is None:
            self.run([request])
        else:
            self._queue(loop).add(request, None)

    def renew(self) -> None:
        """Extend every lease and waiting request this engine holds."""
        for pool, leases in list(self._mine.items()):
            mine = leases.copy()  # one step under the GIL: the loop adds and discards meanwhile
            if mine:
                self._call(self._renew, pool, self.lease_ms, *sorted(mine))

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
        """An execution's event loop is ending: send what it queued, and stop renewing from it."""
        loop = _running_loop()
        if loop is not None and loop in self._batches:
            self._batches[loop].send_now()
        if self._renewer is not None:
            self._renewer.cancel()
            self._renewer = None

    def close(self) -> None:
        self.detach()
        for batch in list(self._batches.values()):  # loops that ended without detaching
            batch.send_now()
        self.worker.shutdown()
        self.client.close()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
