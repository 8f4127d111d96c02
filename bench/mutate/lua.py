"""Named mutations of the Redis backend's Lua scripts (core/plait/tokens/redis.py).

Python mutation tools cannot reach Lua inside a Python string, so each mutation here is a
plain text replacement: ``before`` must occur exactly once in tokens_redis.py (indentation
and the neighbouring line included where a line repeats), and is replaced by ``after``.
Each one removes or bends one part of the allocation rule, the lease bookkeeping or expiry.
"""

from __future__ import annotations

from typing import NamedTuple


class LuaMutation(NamedTuple):
    name: str
    before: str
    after: str


MUTATIONS = [
    # -- the allocation rule (grant) --------------------------------------------------------
    LuaMutation("weight read as 1",
                "local weight = tonumber(redis.call('HGET', P .. ':weights', t) or '1')", "local weight = 1"),
    LuaMutation("cap check replaced by true",
                "if count <= free and held + count <= cap then", "if count <= free then"),
    LuaMutation("free-capacity check replaced by true",
                "if count <= free and held + count <= cap then", "if held + count <= cap then"),
    LuaMutation("cap check `<=` -> `<`",
                "held + count <= cap then", "held + count < cap then"),
    LuaMutation("free-capacity check `<=` -> `<`",
                "if count <= free and", "if count < free and"),
    LuaMutation("grant loop `used() < capacity` -> `<=`",
                "while used() < capacity do", "while used() <= capacity do"),
    LuaMutation("fair-share key k1 ignores the weight",
                "local k1, k2, seq = held / weight,", "local k1, k2, seq = held,"),
    LuaMutation("k1 comparison `<` -> `<=` (a later tenant wins ties)",
                "if best == nil or k1 < bestkey1 or", "if best == nil or k1 <= bestkey1 or"),
    LuaMutation("k2 tie-break dropped",
                "(k2 < bestkey2 or (k2 == bestkey2 and seq < bestseq))", "seq < bestseq"),
    LuaMutation("seq tie-break reversed",
                "(k2 == bestkey2 and seq < bestseq)", "(k2 == bestkey2 and seq > bestseq)"),
    LuaMutation("tenant's queue head is its last request, not its first",
                "redis.call('ZRANGE', P .. ':q:' .. t, 0, 0, 'WITHSCORES')",
                "redis.call('ZRANGE', P .. ':q:' .. t, -1, -1, 'WITHSCORES')"),
    LuaMutation("priority dropped from the ZADD score",
                "-priority * 1e12 + seq, lease)", "seq, lease)"),
    LuaMutation("priority reversed in the ZADD score",
                "-priority * 1e12 + seq, lease)", "priority * 1e12 + seq, lease)"),
    LuaMutation("bucket_take always true",
                "if best == nil or not bucket_take(capacity) then break end", "if best == nil then break end"),
    LuaMutation("rate bucket never refills",
                "b = math.min(capacity, b + (now - at) / 1000.0 * rate)", "b = math.min(capacity, b)"),
    LuaMutation("rate bucket not bounded by the capacity",
                "b = math.min(capacity, b + (now - at) / 1000.0 * rate)", "b = b + (now - at) / 1000.0 * rate"),
    LuaMutation("rate bucket `b >= 1` -> `b > 1`",
                "if b >= 1 then", "if b > 1 then"),
    LuaMutation("granting does not count the tokens as used",
                "redis.call('HINCRBY', P .. ':meta', 'used', best[3])", ""),
    LuaMutation("granting does not count the tenant's held tokens",
                "redis.call('HINCRBY', P .. ':held', best[1], best[3])", ""),
    LuaMutation("a tenant's cap is never stored",
                "if ARGV[11] ~= '' then redis.call('HSET', P .. ':caps', tenant, ARGV[11]) end", ""),
    # -- acquire, release, renew -------------------------------------------------------------
    LuaMutation("asking again enqueues the request again",
                "if not waiting then\n  local seq", "if true then\n  local seq"),
    LuaMutation("acquiring a held lease again does not extend it",
                "redis.call('HSET', P .. ':leases', lease, f[1] .. '|' .. f[2] .. '|' .. (now + ttl))",
                "redis.call('HSET', P .. ':leases', lease, f[1] .. '|' .. f[2] .. '|' .. f[3])"),
    LuaMutation("release not decrementing held",
                "\n  redis.call('HINCRBY', P .. ':held', f[1], -tonumber(f[2]))\n  redis.call('HINCRBY', P .. ':meta'",
                "\n  redis.call('HINCRBY', P .. ':meta'"),
    LuaMutation("release not decrementing used",
                "\n  redis.call('HINCRBY', P .. ':meta', 'used', -tonumber(f[2]))\nelse", "\nelse"),
    LuaMutation("release of a waiting request leaves it queued",
                "\n    redis.call('ZREM', P .. ':q:' .. f[1], lease)\n", "\n"),
    LuaMutation("release grants nothing to the waiting",
                "if redis.call('HEXISTS', P .. ':meta', 'capacity') == 1 then grant() end", ""),
    LuaMutation("renew not extending",
                "redis.call('HSET', P .. h, ARGV[i], f[1] .. '|' .. f[2] .. '|' .. (now + ttl))",
                "redis.call('HSET', P .. h, ARGV[i], f[1] .. '|' .. f[2] .. '|' .. f[3])"),
    LuaMutation("renew extends leases only, not waiting requests",
                "{':leases', ':req'}", "{':leases'}"),
    LuaMutation("renew extends waiting requests only, not leases",
                "{':leases', ':req'}", "{':req'}"),
    LuaMutation("position in the queue counted from 0",
                "return {rank + 1, redis.call('HLEN', P .. ':req')}", "return {rank, redis.call('HLEN', P .. ':req')}"),
    # -- expiry ---------------------------------------------------------------------------------
    LuaMutation("expiry never runs",
                "if now - last < 100 then return end", "if true then return end"),
    LuaMutation("expired leases kept",
                "    if tonumber(f[3]) < now then\n      redis.call('HDEL', P .. ':leases', leases[i])",
                "    if false then\n      redis.call('HDEL', P .. ':leases', leases[i])"),
    LuaMutation("lease expiry `<` -> `<=`",
                "    if tonumber(f[3]) < now then\n      redis.call('HDEL', P .. ':leases', leases[i])",
                "    if tonumber(f[3]) <= now then\n      redis.call('HDEL', P .. ':leases', leases[i])"),
    LuaMutation("an expired lease's tokens not returned to the pool",
                "\n      redis.call('HINCRBY', P .. ':meta', 'used', -tonumber(f[2]))\n", "\n"),
    LuaMutation("an expired lease's tokens not returned to its tenant",
                "\n      redis.call('HINCRBY', P .. ':held', f[1], -tonumber(f[2]))\n", "\n"),
    LuaMutation("expired waiting requests kept",
                "    if tonumber(f[3]) < now then\n      redis.call('HDEL', P .. ':req', reqs[i])",
                "    if false then\n      redis.call('HDEL', P .. ':req', reqs[i])"),
    LuaMutation("request expiry `<` -> `<=`",
                "    if tonumber(f[3]) < now then\n      redis.call('HDEL', P .. ':req', reqs[i])",
                "    if tonumber(f[3]) <= now then\n      redis.call('HDEL', P .. ':req', reqs[i])"),
]


def apply(text: str, mutation: LuaMutation) -> str:
    """``text`` with ``mutation`` applied; fails loudly if its ``before`` is gone or ambiguous."""
    found = text.count(mutation.before)
    if found != 1:
        raise SystemExit(f"Lua mutation {mutation.name!r}: its text occurs {found} times in tokens_redis.py "
                         "(the script changed?); update bench/mutate/lua.py")
    return text.replace(mutation.before, mutation.after)
