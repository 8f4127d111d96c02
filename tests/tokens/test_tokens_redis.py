"""Tenant tokens shared through a real redis-server: several engines, expiry after a crash."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import plait
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from plait.builtin.python_task import PythonTask
from plait.engine import build_engine
from plait.model.settings import Settings
from plait.platforms.local.platform import LocalPlatform
from plait.plugins.registry import Registry, load_registry
from plait.tokens.allocator import Allocator
from plait.tokens.config import PoolConfig, TokenConfig
from plait.tokens.redis import RedisTokenManager
from test_tokens import PooledPython, flood, most_at_once


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("these tests need redis-server: apt-get install redis-server (`make test` installs it)")
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path_factory.mktemp("redis"))], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def url(redis_url):
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    return redis_url


def manager(url: str, capacity: int = 2, lease_seconds: float = 30.0, rate: float | None = None,
            caps: dict[str, int] | None = None, **weights: float) -> RedisTokenManager:
    """An engine's view of pool 'svc'; ``a_dev=2`` gives tenant a/dev weight 2, ``caps`` its cap."""
    config = TokenConfig(pools={"svc": PoolConfig("svc", capacity, rate)},
                         weights={t.replace("_", "/"): w for t, w in weights.items()},
                         caps={t: {"svc": c} for t, c in (caps or {}).items()})
    return RedisTokenManager(url, config, lease_seconds=lease_seconds)


def holders(m: RedisTokenManager) -> dict[str, int]:
    return m.snapshot()["svc"]["holders"]


def test_two_engines_share_one_pool_and_a_release_goes_to_the_other_engines_waiter(url):
    one, two = manager(url), manager(url)
    assert one.try_acquire("svc", "a/dev", "one-1")[0]
    assert two.try_acquire("svc", "b/dev", "two-1")[0]
    granted, place, queued = two.try_acquire("svc", "b/dev", "two-2")
    assert not granted and (place, queued) == (1, 1)
    assert one.snapshot()["svc"]["used"] == 2
    one.release("svc", "one-1")
    assert two.try_acquire("svc", "b/dev", "two-2")[0], "the freed token did not go to the waiting request"
    assert two.try_acquire("svc", "b/dev", "two-2")[0], "acquiring again with the same lease is a no-op"
    assert two.snapshot()["svc"] == {"capacity": 2, "rate": None, "used": 2, "holders": {"b/dev": 2},
                                     "waiters": {}}


def test_a_flooding_tenant_gets_no_more_than_its_share_once_another_waits(url):
    loud, quiet = manager(url, capacity=4), manager(url, capacity=4)
    for i in range(12):
        loud.try_acquire("svc", "loud/dev", f"loud-{i}")
    assert loud.snapshot()["svc"]["holders"] == {"loud/dev": 4}  # idle capacity is used
    for i in range(3):
        quiet.try_acquire("svc", "quiet/dev", f"quiet-{i}")
    for i in range(4):  # as the loud tenant's work ends, the quiet one catches up to half
        loud.release("svc", f"loud-{i}")
    assert loud.snapshot()["svc"]["holders"] == {"loud/dev": 2, "quiet/dev": 2}


def test_a_heavier_tenant_holds_its_weighted_share_once_both_wait(url):
    heavy, light = manager(url, capacity=6, heavy_dev=2.0), manager(url, capacity=6)
    for i in range(6):  # earlier work fills the pool before either backlog arrives
        light.try_acquire("svc", "earlier/dev", f"earlier-{i}")
    for i in range(10):
        light.try_acquire("svc", "light/dev", f"light-{i}")
        heavy.try_acquire("svc", "heavy/dev", f"heavy-{i}")
    for i in range(6):
        light.release("svc", f"earlier-{i}")
    assert holders(light) == {"heavy/dev": 4, "light/dev": 2}, "weight 2 should hold twice weight 1's share"
    for i in range(4):  # as work ends the shares stay weighted
        heavy.release("svc", f"heavy-{i}")
        light.release("svc", f"light-{i}")
        assert holders(light) == {"heavy/dev": 4, "light/dev": 2}


def test_among_tenants_equally_below_their_share_the_heavier_one_goes_first(url):
    # both hold nothing; the heavier stays further below its share after one more token, so
    # it gets the token even though the lighter one asked first
    heavy, light = manager(url, capacity=1, heavy_dev=3.0), manager(url, capacity=1)
    assert light.try_acquire("svc", "earlier/dev", "earlier")[0]
    light.try_acquire("svc", "light/dev", "light")
    heavy.try_acquire("svc", "heavy/dev", "heavy")
    light.release("svc", "earlier")
    assert holders(light) == {"heavy/dev": 1}


def test_among_tenants_with_the_same_share_the_one_that_asked_first_goes_first(url):
    m = manager(url, capacity=1)
    assert m.try_acquire("svc", "earlier/dev", "earlier")[0]
    for tenant in ("c/dev", "a/dev", "b/dev"):  # neither name order nor set order is arrival order
        m.try_acquire("svc", tenant, f"{tenant}-1")
    order = []
    for lease in ("earlier", "c/dev-1", "a/dev-1"):
        m.release("svc", lease)
        order.extend(holders(m))
    assert order == ["c/dev", "a/dev", "b/dev"]


def test_a_tenant_never_holds_more_than_its_hard_cap_even_with_the_pool_idle(url):
    capped = manager(url, capacity=4, caps={"a/dev": 2})
    granted = [capped.try_acquire("svc", "a/dev", f"a-{i}")[0] for i in range(4)]
    assert granted == [True, True, False, False], "a tenant went past its cap of 2"
    snapshot = capped.snapshot()["svc"]
    assert snapshot["used"] == 2 and snapshot["waiters"] == {"a/dev": 2}
    assert capped.try_acquire("svc", "b/dev", "b-1")[0], "capacity above the cap is free for others"
    capped.release("svc", "a-0")
    assert holders(capped) == {"a/dev": 2, "b/dev": 1}, "a released token goes to the capped tenant's next"
    with pytest.raises(plait.PlaitError, match="tenant a/dev's cap is 2"):
        capped.try_acquire("svc", "a/dev", "big", count=3)


def test_within_a_tenant_higher_priority_goes_first_then_arrival_order(url):
    m = manager(url, capacity=1)
    assert m.try_acquire("svc", "a/dev", "first")[0]
    # lease names sort against their arrival, so an order by name is not mistaken for arrival
    m.try_acquire("svc", "a/dev", "z-low", priority=0)
    m.try_acquire("svc", "a/dev", "y-high", priority=5)
    m.try_acquire("svc", "a/dev", "x-low-later", priority=0)
    m.try_acquire("svc", "a/dev", "w-higher", priority=9)
    assert m.try_acquire("svc", "a/dev", "y-high", priority=5)[1:] == (2, 4), "place 2 of 4, behind w-higher"
    order = ["first"]
    for _ in range(4):
        m.release("svc", order[-1])
        leases = m.client.hkeys(f"{m.prefix}svc:leases")
        assert len(leases) == 1
        order.append(leases[0])
    assert order == ["first", "w-higher", "y-high", "z-low", "x-low-later"]


def test_a_rate_limited_pool_starts_no_faster_than_its_rate(url):
    m = manager(url, capacity=4, rate=2.0)
    began = time.monotonic()
    granted = [m.try_acquire("svc", "a/dev", f"r{i}")[0] for i in range(8)]
    assert granted == [True] * 4 + [False] * 4, "the bucket starts full: a burst of up to the capacity"
    for i in range(4):
        m.release("svc", f"r{i}")
    # the pool is idle, but the bucket refills at two tokens a second
    assert m.snapshot()["svc"]["used"] <= int(2 * (time.monotonic() - began)), "the rate did not hold starts back"
    deadline = time.monotonic() + 30
    while m.snapshot()["svc"]["used"] < 4:
        for i in range(4, 8):
            m.try_acquire("svc", "a/dev", f"r{i}")
        assert time.monotonic() < deadline, "the bucket never refilled"
        time.sleep(0.05)
    assert time.monotonic() - began > 1.5, "four more starts at two a second took under 1.5 seconds"


def test_releasing_a_waiting_request_withdraws_it(url):
    m = manager(url, capacity=1)
    assert m.try_acquire("svc", "a/dev", "held")[0]
    assert not m.try_acquire("svc", "b/dev", "given-up")[0]
    m.release("svc", "given-up")
    assert m.snapshot()["svc"]["waiters"] == {}
    m.release("svc", "held")
    assert m.snapshot()["svc"] == {"capacity": 1, "rate": None, "used": 0, "holders": {}, "waiters": {}}, \
        "a withdrawn request was granted"


def test_a_waiting_request_nobody_renews_expires_and_is_never_granted(url):
    survivor, ghost = manager(url, capacity=1), manager(url, capacity=1, lease_seconds=0.5)
    assert survivor.try_acquire("svc", "b/dev", "held")[0]
    assert not ghost.try_acquire("svc", "ghost/dev", "gone")[0]  # its engine dies: never renewed
    assert not survivor.try_acquire("svc", "b/dev", "next")[0]
    deadline = time.monotonic() + 15
    while "ghost/dev" in survivor.snapshot()["svc"]["waiters"]:
        assert time.monotonic() < deadline, "a dead engine's waiting request never expired"
        survivor.try_acquire("svc", "b/dev", "next")  # each call expires what is overdue
        time.sleep(0.05)
    survivor.release("svc", "held")
    assert holders(survivor) == {"b/dev": 1}, "the token went to a dead engine's request"


def test_a_request_over_the_capacity_fails_at_once(url):
    with pytest.raises(plait.PlaitError, match="can never be granted"):
        manager(url).try_acquire("svc", "a/dev", "big", count=3)


class Clock:
    """The time the scripts are told: each call passes its `now` to Redis, so a test sets it.

    The scripts and Redis are real; only the caller's clock is the test's, so lease and
    rate rules are checked at exact moments, without sleeping and without racing a loaded machine.
    """

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    import plait.tokens.redis

    fake = Clock()
    monkeypatch.setattr(plait.tokens.redis, "time", fake)
    return fake


def test_a_request_larger_than_the_free_capacity_waits_until_enough_is_free(url):
    m = manager(url, capacity=3)
    assert m.try_acquire("svc", "a/dev", "a-1")[0] and m.try_acquire("svc", "a/dev", "a-2")[0]
    assert not m.try_acquire("svc", "b/dev", "pair", count=2)[0], "two tokens granted with one free"
    assert m.snapshot()["svc"]["used"] == 2
    m.release("svc", "a-1")
    assert m.try_acquire("svc", "b/dev", "pair", count=2)[0], "two free tokens did not go to the request for two"
    assert m.snapshot()["svc"]["holders"] == {"a/dev": 1, "b/dev": 2}


def test_a_rate_limited_pool_starts_full_and_grants_at_once_when_its_bucket_holds_a_token(url, clock):
    m = manager(url, capacity=1, rate=1.0)
    assert m.try_acquire("svc", "a/dev", "first")[0], "a new pool's bucket starts full"
    m.release("svc", "first")
    assert not m.try_acquire("svc", "a/dev", "second")[0], "a second start in the same instant, at one a second"
    clock.advance(0.5)
    assert not m.try_acquire("svc", "a/dev", "second")[0], "granted on half a token"
    clock.advance(0.5)
    assert m.try_acquire("svc", "a/dev", "second")[0], "one second later the bucket holds one token"


def test_a_rate_limited_pool_never_bursts_above_its_capacity_after_idling(url, clock):
    m = manager(url, capacity=2, rate=1.0)
    for lease in ("r1", "r2"):
        assert m.try_acquire("svc", "a/dev", lease)[0]
        m.release("svc", lease)
    clock.advance(10)  # ten seconds idle at one a second: the bucket holds two, its capacity, not ten
    started = []
    for lease in ("r3", "r4", "r5"):  # each starts and ends at once: capacity is never what stops them
        started.append(m.try_acquire("svc", "a/dev", lease)[0])
        m.release("svc", lease)
    assert started == [True, True, False], "after idling the pool started more than its capacity at once"
    clock.advance(1)
    assert m.try_acquire("svc", "a/dev", "r5")[0]


def test_asking_again_keeps_a_waiting_requests_place(url):
    m = manager(url, capacity=1)
    assert m.try_acquire("svc", "a/dev", "held")[0]
    assert m.try_acquire("svc", "b/dev", "first") == (False, 1, 1)
    assert m.try_acquire("svc", "b/dev", "second") == (False, 2, 2)
    # acquire asks again every poll, as each waiting engine does: the request keeps its place
    assert m.try_acquire("svc", "b/dev", "first") == (False, 1, 2), "asking again sent the request to the back"
    m.release("svc", "held")
    assert m.client.hkeys(f"{m.prefix}svc:leases") == ["first"]


def test_acquiring_a_held_lease_again_extends_it(url, clock):
    holder = manager(url, capacity=1, lease_seconds=1.0)  # try_acquire alone: nothing renews it
    other = manager(url, capacity=1)
    assert holder.try_acquire("svc", "a/dev", "held")[0]
    assert not other.try_acquire("svc", "b/dev", "other")[0]
    clock.advance(0.8)
    assert holder.try_acquire("svc", "a/dev", "held")[0]  # held, and now until 1.8 s
    clock.advance(0.7)  # 1.5 s: past the first lease time, within the extended one
    assert not other.try_acquire("svc", "b/dev", "other")[0], "acquiring a held lease again did not extend it"
    assert holders(other) == {"a/dev": 1}
    clock.advance(0.5)  # 2.0 s: the extended lease has run out
    assert other.try_acquire("svc", "b/dev", "other")[0], "the lease never expired"
    assert holders(other) == {"b/dev": 1}


def test_renew_keeps_a_waiting_request_alive(url, clock):
    holder = manager(url, capacity=1)
    waiter = manager(url, capacity=1, lease_seconds=1.0)
    assert holder.try_acquire("svc", "a/dev", "held")[0]
    assert not waiter.try_acquire("svc", "b/dev", "patient")[0]  # from here on it only renews
    for _ in range(3):  # at 0.8, 1.6 and 2.4 s, each past the request's first lease time
        clock.advance(0.8)
        waiter.renew()
        assert holder.try_acquire("svc", "a/dev", "held")[0]  # each call expires what is overdue
        assert holder.snapshot()["svc"]["waiters"] == {"b/dev": 1}, "a renewed waiting request expired"
    holder.release("svc", "held")
    assert holders(holder) == {"b/dev": 1}, "the token did not go to the renewed request"


def test_a_lease_and_a_waiting_request_outlive_their_last_renewal_by_the_whole_lease_time(url, clock):
    # lease_seconds is how long a lease outlives its engine's last renewal: at that very
    # moment it still holds, and the next expiry scan (at most every 0.1 s) removes it
    quiet = manager(url, capacity=1, lease_seconds=1.0)  # its engine stops renewing from here
    other = manager(url, capacity=1)
    assert quiet.try_acquire("svc", "a/dev", "held")[0]
    assert not quiet.try_acquire("svc", "a/dev", "queued")[0]
    clock.advance(1.0)
    other.try_acquire("svc", "b/dev", "other")
    assert other.client.hkeys(f"{other.prefix}svc:leases") == ["held"], "a lease expired before its lease time was up"
    assert other.snapshot()["svc"]["waiters"] == {"a/dev": 1, "b/dev": 1}, \
        "a waiting request expired before its lease time was up"
    clock.advance(0.1)
    assert other.try_acquire("svc", "b/dev", "other")[0], "an expired lease still held its token"
    assert other.snapshot()["svc"]["waiters"] == {}, "an expired waiting request still waits"


LEASE = 1.5
HOLDER = """
import asyncio
from plait.tokens.config import PoolConfig, TokenConfig
from plait.tokens.redis import RedisTokenManager

async def main():
    # acquire, as the engine does: it starts renewing this engine's leases every lease/3
    m = RedisTokenManager({url!r}, TokenConfig(pools={{"svc": PoolConfig("svc", 2)}}), lease_seconds={lease})
    {acquire}
    print("holding", flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


ONE_BY_ONE = """await m.acquire("svc", "a/dev", "held-1")
    await m.acquire("svc", "a/dev", "held-2")"""
TOGETHER = """held = asyncio.gather(m.acquire("svc", "a/dev", "held-1"), m.acquire("svc", "a/dev", "held-2"))
    waiting = asyncio.create_task(m.acquire("svc", "a/dev", "queued-3"))  # in the same batch, and waits
    await held"""


@pytest.mark.parametrize("acquire", [ONE_BY_ONE, TOGETHER], ids=["one by one", "in one batch, one more waiting"])
def test_a_live_engine_keeps_its_tokens_past_the_lease_time_and_a_killed_one_loses_them(url, acquire):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(url=url, lease=LEASE, acquire=acquire)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        held_at = time.monotonic()
        survivor = manager(url, lease_seconds=30)
        # alive, it renews: for three lease times nothing comes back (each call also expires
        # whatever is overdue, so a lease that lapsed would be granted here)
        while time.monotonic() - held_at < 3 * LEASE:
            assert not survivor.try_acquire("svc", "b/dev", "alive")[0], \
                f"a live engine lost its tokens {time.monotonic() - held_at:.1f}s after taking them"
            assert survivor.snapshot()["svc"]["holders"] == {"a/dev": 2}
            time.sleep(0.1)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    killed_at = time.monotonic()
    while not survivor.try_acquire("svc", "b/dev", "alive")[0]:  # dead, it stops renewing
        assert time.monotonic() - killed_at < LEASE + 10, "the killed engine's tokens never came back"
        time.sleep(0.05)
    # the dead engine's waiting request may be granted the token its held ones freed, in the same
    # moment, if its lease ran out a moment later than theirs: it then lapses within a lease time
    while (snapshot := survivor.snapshot()["svc"])["holders"] != {"b/dev": 1}:
        assert time.monotonic() - killed_at < 2 * LEASE + 10, f"a token leaked: {snapshot}"
        survivor.try_acquire("svc", "b/dev", "expire")  # a call expires what is overdue
        survivor.release("svc", "expire")
        time.sleep(0.05)
    assert snapshot["used"] == 1


def test_two_engines_running_workflows_never_exceed_the_shared_pool(url, tmp_path, monkeypatch):
    monkeypatch.setenv("PLAIT_TOKENS_URL", url)
    monkeypatch.setenv("PLAIT_POOLS", "svc:test=2")
    log = tmp_path / "log"
    results = []

    shared = load_registry()
    monkeypatch.setitem(shared.task_types, "pooled", PooledPython())  # for compiling the workflow
    _ = flood.spec

    def one_engine(home: str) -> None:
        # Each engine, as in its own process, has its own task type instances and worker pool.
        registry = Registry(task_types={"python": PythonTask(), "pooled": PooledPython()},
                            transformers=shared.transformers, platforms={"local": LocalPlatform()})
        engine = build_engine(Settings.from_env(home), registry=registry)
        try:
            results.append(plait.run(flood, {"n": 4, "log": str(log), "seconds": 0.3}, engine=engine))
        finally:
            engine.close()

    first = threading.Thread(target=one_engine, args=(str(tmp_path / "one"),))
    first.start()
    time.sleep(0.5)
    second = threading.Thread(target=one_engine, args=(str(tmp_path / "two"),))
    second.start()
    first.join(120)
    second.join(120)
    assert [r.phase.value for r in results] == ["succeeded", "succeeded"]
    assert most_at_once(log) == 2
    assert RedisTokenManager(url).snapshot()["svc:test"]["used"] == 0


def test_plait_pools_reads_the_shared_pools_from_redis(url, monkeypatch):
    holder = manager(url, capacity=2)
    holder.try_acquire("svc", "team/prod", "one")
    holder.try_acquire("svc", "team/prod", "two")
    holder.try_acquire("svc", "other/dev", "three")
    monkeypatch.setenv("PLAIT_TOKENS_URL", url)
    out = subprocess.run([sys.executable, "-m", "plait.cli", "pools"], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "COLUMNS": "200"}).stdout
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line.count("│") > 2]
    assert ["svc", "2", "", "other/dev", "", "1"] in rows
    assert ["", "", "", "team/prod", "2", ""] in rows


PRIORITY_WORKFLOW = """
import plait
from plait.builtin.python_task import PythonTask
from plait.plugins.registry import load_registry


class Pooled(PythonTask):
    name = "pooled"

    def pools(self, task, config):
        return {"svc": 1}


load_registry().task_types["pooled"] = Pooled()  # as an installed plugin would register it


@plait.task(task_type="pooled")
def mark(path: str) -> str:
    open(path, "w").write("ran")
    return path


@plait.workflow
def one(path: str) -> str:
    return mark(path=path)
"""


def test_plait_run_priority_puts_an_execution_ahead_of_earlier_requests_of_its_tenant(url, tmp_path):
    # the CLI's engine shares pool 'svc' with this test through Redis: this test holds the only
    # token, and an earlier request of the same tenant waits with the default priority
    (tmp_path / "prio_flow.py").write_text(PRIORITY_WORKFLOW)
    other = manager(url, capacity=1)
    assert other.try_acquire("svc", "default/development", "held")[0]
    assert not other.try_acquire("svc", "default/development", "earlier")[0]
    env = {**os.environ, "PLAIT_TOKENS_URL": url, "PLAIT_POOLS": "svc=1"}
    cli = subprocess.Popen([sys.executable, "-m", "plait.cli", "run", str(tmp_path / "prio_flow.py:one"),
                            "--priority", "5", "--path", str(tmp_path / "ran")],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while other.snapshot()["svc"]["waiters"].get("default/development", 0) < 2:
            assert cli.poll() is None, cli.stdout.read()
            assert time.monotonic() < deadline, "the CLI's attempt never queued for the pool"
            time.sleep(0.05)
        other.release("svc", "held")
        while not other.try_acquire("svc", "default/development", "earlier")[0]:
            assert time.monotonic() < deadline + 60, "the token never came back to the earlier request"
            time.sleep(0.05)
        # the freed token went to the priority-5 execution, which ran and gave it back before the
        # earlier request got it
        assert (tmp_path / "ran").exists(), "the earlier, lower-priority request got the token first"
        other.release("svc", "earlier")
        out, _ = cli.communicate(timeout=120)
    finally:
        cli.kill()
    assert cli.returncode == 0, out


@pytest.mark.parametrize("backend", ["redis", "in-process"])
def test_an_execution_another_engine_took_over_keeps_its_shared_leases_for_the_new_owner(
        url, tmp_path, monkeypatch, backend):
    """A detached execution must not release a Redis lease: its id is the attempt's, which the
    engine that claimed the execution holds now. In-process leases are this engine's alone."""
    import asyncio

    from plait.engine.execution import RunOptions

    if backend == "redis":
        monkeypatch.setenv("PLAIT_TOKENS_URL", url)
    monkeypatch.setenv("PLAIT_POOLS", "svc:test=2")
    shared = load_registry()
    monkeypatch.setitem(shared.task_types, "pooled", PooledPython())
    registry = Registry(task_types={"python": PythonTask(), "pooled": PooledPython()},
                        transformers=shared.transformers, platforms={"local": LocalPlatform()})
    engine = build_engine(Settings.from_env(tmp_path / "home"), registry=registry)
    log = tmp_path / "log"

    def used() -> int:
        return int(engine.tokens.snapshot()["svc:test"].get("used") or 0)

    async def take_over() -> int:
        run = asyncio.create_task(engine.run(flood.spec, {"n": 1, "log": str(log), "seconds": 30},
                                             RunOptions(execution_id="taken-over")))
        deadline = time.monotonic() + 60
        while not (log.exists() and used() == 1):
            assert time.monotonic() < deadline, "the attempt never started holding its token"
            await asyncio.sleep(0.05)
        engine.detach("taken-over")  # as the host does when it finds another engine owns it
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
        return used()

    try:
        held_after = asyncio.run(take_over())
    finally:
        engine.close()
    if backend == "redis":
        assert held_after == 1, "the lease the new owner holds under this attempt id was released"
        assert RedisTokenManager(url).snapshot()["svc:test"]["used"] == 1
    else:
        assert held_after == 0, "an in-process lease of a detached execution leaked"


# ---------------------------------------------------------------------------------------
# Batches: the requests an engine makes at the same moment go to Redis together
# ---------------------------------------------------------------------------------------

LEASES = [("a/dev", 1), ("b/dev", 2), ("c/dev", 1), ("a/dev", 2), ("b/dev", 1), ("c/dev", 1), ("a/dev", 1),
          ("b/dev", 1)]
"""The tenant and count each lease id asks with, in the generated request sequences below."""
WEIGHTS = {"a/dev": 1.0, "b/dev": 2.0, "c/dev": 1.0}
CAPS = {"c/dev": {"svc": 1}}

requests = st.lists(st.one_of(st.tuples(st.just("a"), st.integers(0, len(LEASES) - 1), st.integers(0, 2)),
                              st.tuples(st.just("r"), st.integers(0, len(LEASES) - 1), st.just(0))),
                    min_size=1, max_size=40)


@pytest.mark.parametrize("most_per_call", [500, 3], ids=["one script call", "split into calls of 3"])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(capacity=st.integers(2, 4), rate=st.sampled_from([None, 1.0]), ops=requests)
@example(capacity=3, rate=None, ops=[("a", 2, 0), ("a", 5, 0)])  # c/dev's second request waits on its cap of 1
@example(capacity=3, rate=None, ops=[("a", 0, 0), ("a", 4, 0), ("a", 3, 0), ("a", 6, 0)])  # a's 1 behind its 2
@example(capacity=2, rate=None, ops=[("a", 1, 0), ("a", 7, 0), ("a", 0, 0), ("a", 2, 1), ("r", 1, 0)])  # a before c:
# tied on share, arrival decides across tenants; c's priority counts only within c
@example(capacity=2, rate=None, ops=[("a", 0, 0), ("a", 1, 0), ("a", 7, 0), ("r", 1, 0), ("a", 1, 1)])  # b's 2
# is withdrawn while it waits: its 1 behind it fits the free token and is granted (the rule did not)
def test_a_batch_gives_each_request_the_answer_it_would_have_had_alone(redis_url, most_per_call, capacity, rate, ops):
    """Acquires and releases sent as one batch: each answer, and the pool after, are the rule's.

    All at one moment (the scripts are told a fixed time): a rate-limited pool's bucket, full
    at first, does not refill between requests, in the rule as in Redis."""
    import plait.tokens.redis
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    config = TokenConfig(pools={"svc": PoolConfig("svc", capacity, rate)}, weights=WEIGHTS, caps=CAPS)
    rule = Allocator(config.pool("svc"), WEIGHTS, {"c/dev": 1})
    alone, together = (RedisTokenManager(redis_url, config, prefix=p) for p in ("alone:", "together:"))
    expected, one_by_one, batch = [], [], []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plait.tokens.redis, "_MOST_PER_CALL", most_per_call)
        patch.setattr(plait.tokens.redis, "time", Clock())
        for op, index, priority in ops:
            lease, (tenant, count) = f"l{index}", LEASES[index]
            if op == "a":
                rule.request(lease, tenant, count, priority)
                expected.append((1, 0, 0) if lease in rule.leases else (0, *rule.position(lease)))
                granted, place, queued = alone.try_acquire("svc", tenant, lease, count, priority)
                one_by_one.append((int(granted), place, queued))
                batch.append(together._acquiring("svc", tenant, lease, count, priority))
            else:
                rule.release(lease)
                expected.append((1, 0, 0))
                alone.release("svc", lease)
                one_by_one.append((1, 0, 0))
                batch.append(("svc", ["r", lease, "", "", "", "", ""]))
        answers = together.run(batch)
    assert one_by_one == expected, "one request at a time, Redis answered otherwise than the rule"
    assert answers == expected, "in one batch, a request got another answer than it would alone"
    state = {k: v for k, v in rule.snapshot().items() if k in ("used", "holders", "waiters")}
    for m in (alone, together):
        assert {k: v for k, v in m.snapshot()["svc"].items() if k in ("used", "holders", "waiters")} == state
        assert sorted(m.client.hkeys(f"{m.prefix}svc:leases")) == sorted(rule.leases)
        m.close()


def script_calls(m: RedisTokenManager, kind: str = "a") -> list[int]:
    """How many requests each call of the batch script carried, oldest first, since the slow log
    was reset: calls whose first request is an acquire (``kind`` "a") or a release ("r")."""
    import re

    calls = []
    for entry in reversed(m.client.slowlog_get(10_000)):
        command = entry["command"].decode()
        args = command.split(" ")
        if args[:4] != ["EVALSHA", m._batch.sha, "0", f"{m.prefix}svc"] or args[8] != kind:
            continue
        more = re.fullmatch(r".*\.\.\. \((\d+) more arguments\)", command)
        total = 31 + int(more.group(1)) if more else len(args)  # the log shows 31 arguments at most
        calls.append((total - 8) // 7)
    return calls


@pytest.fixture
def slowlog(url):
    """Redis logs every command with its arguments from here on (the test reads the log)."""
    import redis

    client = redis.Redis.from_url(url)
    was = client.config_get("slowlog-*")
    client.config_set("slowlog-log-slower-than", 0)
    client.config_set("slowlog-max-len", 10_000)
    client.slowlog_reset()
    yield
    client.config_set("slowlog-log-slower-than", was["slowlog-log-slower-than"])
    client.config_set("slowlog-max-len", was["slowlog-max-len"])


def test_two_engines_asking_at_once_send_one_batch_each_and_freed_tokens_go_by_fair_share(url, slowlog):
    import asyncio

    one = manager(url, capacity=6)  # tenants a/dev and c/dev, weight 1
    two = manager(url, capacity=6, b_dev=2.0)  # tenant b/dev, weight 2
    earlier = manager(url, capacity=6)
    for i in range(6):  # the pool is full when both engines' requests arrive
        assert earlier.try_acquire("svc", "earlier/dev", f"earlier-{i}")[0]
    earlier.client.slowlog_reset()
    granted: list[str] = []

    async def attempt(m: RedisTokenManager, tenant: str, lease: str) -> None:
        try:  # as the engine runs an attempt: holding until it ends, releasing on every ending
            await m.acquire("svc", tenant, lease)
            granted.append(lease)
            await asyncio.Event().wait()
        finally:
            m.release("svc", lease)

    async def engines() -> None:
        # 24 attempts start in one tick: 16 on engine one, interleaving its two tenants, 8 on two
        tasks = [asyncio.create_task(attempt(one, t, f"{t[0]}{i}")) for i in range(8) for t in ("a/dev", "c/dev")]
        tasks += [asyncio.create_task(attempt(two, "b/dev", f"b{i}")) for i in range(8)]
        deadline = time.monotonic() + 30
        while earlier.snapshot()["svc"]["waiters"] != {"a/dev": 8, "b/dev": 8, "c/dev": 8}:
            assert time.monotonic() < deadline, "the 24 requests never all waited"
            await asyncio.sleep(0.01)
        assert sorted(script_calls(one)[:2]) == [8, 16], "an engine's requests of one tick went in several calls"
        for i in range(6):  # the pool's 6 tokens free at once, in one batch
            earlier.release("svc", f"earlier-{i}")
        while len(granted) < 6:
            assert time.monotonic() < deadline, f"only {granted} were granted"
            await asyncio.sleep(0.01)
        snapshot = earlier.snapshot()["svc"]
        assert snapshot["used"] == 6 and len(granted) == 6, f"more than the capacity was granted: {granted}"
        # weight 2 holds half of the pool; a and c a quarter each, the odd token to the earlier asker
        assert snapshot["holders"] == {"b/dev": 3, "a/dev": 2, "c/dev": 1}
        assert sorted(granted) == ["a0", "a1", "b0", "b1", "b2", "c0"], "within a tenant, arrival order"
        assert snapshot["waiters"] == {"a/dev": 6, "b/dev": 5, "c/dev": 7}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for m in (one, two, earlier):
            m.detach()

    asyncio.run(engines())
    assert script_calls(earlier, "r")[0] == 6, "the six releases did not go as one batch"
    assert one.snapshot()["svc"]["waiters"] == {}, "an ended attempt's request still waits"
    assert holders(one) == {}, "an ended attempt still holds its token"


def test_attempts_ending_while_their_requests_are_on_the_way_withdraw_them(url):
    import asyncio

    m, other = manager(url, capacity=1), manager(url, capacity=1)
    assert other.try_acquire("svc", "b/dev", "held")[0]

    async def engine() -> None:
        tasks = [asyncio.create_task(m.acquire("svc", "a/dev", f"a{i}")) for i in range(5)]
        await asyncio.sleep(0)  # the attempts have asked: their batch is queued
        for task in tasks:  # aborted while their batch is on its way: each release goes after it
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        m.detach()  # an execution's end: what it queued is in Redis when this returns

    asyncio.run(engine())
    assert other.snapshot()["svc"]["waiters"] == {}, "an aborted attempt's request was left waiting"
    other.release("svc", "held")
    assert holders(other) == {}, "the freed token went to an aborted attempt"


def test_releases_an_engine_queued_are_in_redis_when_its_execution_ends(url, slowlog):
    import asyncio

    m = manager(url, capacity=5)

    async def engine() -> list[int]:
        used = []
        for on_the_way in (False, True):
            await asyncio.gather(*(m.acquire("svc", "a/dev", f"a{i}") for i in range(5)))
            for i in range(5):  # ending together: their releases go as one batch
                m.release("svc", f"a{i}")
            if on_the_way:
                await asyncio.sleep(0)  # the batch has left for Redis when the execution ends
            m.detach()  # an execution's end: what it released is in Redis when this returns
            used.append(m.snapshot()["svc"]["used"])
        return used

    assert asyncio.run(engine()) == [0, 0], "releases an engine made were not in Redis when its execution ended"
    assert (script_calls(m), script_calls(m, "r")) == ([5, 5], [5, 5]), "each five requests went in one call"
