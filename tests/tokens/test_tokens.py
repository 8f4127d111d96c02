"""Tenant tokens: the allocation rule (property tests), a simulated saturation scenario, and
the engine enforcing a task type's pools."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import os
import sys
import time
from pathlib import Path

import plait
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plait.builtin.python_task import PythonTask
from plait.engine import build_engine
from plait.engine.execution import Engine, RunOptions
from plait.service.run import encode_inputs
from plait.tokens.allocator import Allocator, jain_index
from plait.tokens.config import PoolConfig, TokenConfig, TokenRequestError

TENANTS = ["a/dev", "b/dev", "c/dev"]


def eligible_waiting(alloc: Allocator) -> list[str]:
    """Waiting requests that could be granted right now (there should never be any)."""
    free = alloc.pool.capacity - alloc.used
    found = []
    for tenant, queue in alloc.waiting.items():
        if queue:
            count = queue[0][3]
            if count <= free and alloc.held.get(tenant, 0) + count <= alloc.cap(tenant):
                found.append(queue[0][2])
    return found


operations = st.lists(
    st.one_of(
        st.tuples(st.just("request"), st.sampled_from(TENANTS), st.integers(1, 3), st.integers(0, 2)),
        st.tuples(st.just("release"), st.integers(0, 10_000)),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(capacity=st.integers(1, 8), caps=st.dictionaries(st.sampled_from(TENANTS), st.integers(3, 8)),
       weights=st.dictionaries(st.sampled_from(TENANTS), st.sampled_from([0.5, 1.0, 2.0, 3.0])), ops=operations)
def test_never_above_capacity_or_cap_and_never_idle_while_someone_eligible_waits(capacity, caps, weights, ops):
    alloc = Allocator(PoolConfig("svc", capacity), weights, caps)
    held: list[str] = []
    for n, op in enumerate(ops):
        if op[0] == "request":
            _, tenant, count, priority = op
            if count > min(capacity, alloc.cap(tenant)):
                with pytest.raises(TokenRequestError):
                    alloc.request(f"r{n}", tenant, count, priority)
                continue
            alloc.request(f"r{n}", tenant, count, priority)
        elif held:
            alloc.release(held[op[1] % len(held)])
        held = list(alloc.leases)
        assert alloc.used == sum(lease.count for lease in alloc.leases.values()) <= capacity
        for tenant in TENANTS:
            assert alloc.held.get(tenant, 0) <= alloc.cap(tenant)
        assert eligible_waiting(alloc) == []


@settings(max_examples=200, deadline=None)
@given(capacity=st.integers(2, 12), weights=st.lists(st.sampled_from([1, 2, 3]), min_size=2, max_size=4),
       releases=st.lists(st.integers(0, 10_000), min_size=1, max_size=200))
def test_under_saturation_every_tenant_holds_its_weighted_share_within_one_token(capacity, weights, releases):
    tenants = [f"t{i}/dev" for i in range(len(weights))]
    alloc = Allocator(PoolConfig("svc", capacity), dict(zip(tenants, map(float, weights))))
    for i in range(capacity):  # the pool is busy with earlier work when the backlogs arrive
        alloc.request(f"earlier{i}", "earlier/dev")
    n = 0
    for tenant in tenants:  # everyone has far more work queued than the pool can run
        for _ in range(capacity * 3):
            alloc.request(f"r{n}", tenant)
            n += 1
    for i in range(capacity):  # as the earlier work ends, the pool goes to the backlogs fairly
        alloc.release(f"earlier{i}")
    total = sum(weights)
    for pick in releases:
        leases = sorted(alloc.leases)
        alloc.release(leases[pick % len(leases)])
        for tenant in tenants:  # keep every tenant backlogged
            alloc.request(f"r{n}", tenant)
            n += 1
        assert alloc.used == capacity
        for tenant, weight in zip(tenants, weights):
            share = capacity * weight / total
            assert abs(alloc.held.get(tenant, 0) - share) <= 1, (alloc.held, share)


def test_within_a_tenant_priority_comes_first_then_arrival():
    alloc = Allocator(PoolConfig("svc", 1))
    alloc.request("first", "a/dev")
    alloc.request("low", "a/dev", priority=0)
    alloc.request("high", "a/dev", priority=5)
    alloc.request("low-later", "a/dev", priority=0)
    order = []
    for holder in ["first", "high", "low", "low-later"]:
        assert list(alloc.leases) == [holder]
        order.append(holder)
        alloc.release(holder)
    assert order == ["first", "high", "low", "low-later"]


def test_a_request_larger_than_the_pool_or_the_cap_fails_at_once():
    alloc = Allocator(PoolConfig("snowflake:acme", 4), caps={"a/dev": 2})
    with pytest.raises(TokenRequestError, match="pool 'snowflake:acme'.*5 tokens.*capacity is 4"):
        alloc.request("x", "b/dev", 5)
    with pytest.raises(TokenRequestError, match="tenant a/dev's cap is 2"):
        alloc.request("y", "a/dev", 3)


def test_acquiring_twice_with_one_lease_id_is_a_no_op():
    alloc = Allocator(PoolConfig("svc", 2))
    assert alloc.request("x", "a/dev") == ["x"]
    assert alloc.request("x", "a/dev") == []
    assert alloc.used == 1


def test_a_request_for_no_tokens_is_refused():
    alloc = Allocator(PoolConfig("svc", 2))
    with pytest.raises(TokenRequestError, match="a request for 0 tokens can never be granted"):
        alloc.request("nothing", "a/dev", count=0)
    assert alloc.snapshot() == {"capacity": 2, "rate": None, "used": 0, "holders": {}, "waiters": {}}


def test_a_waiting_request_that_is_released_is_withdrawn_and_never_granted():
    alloc = Allocator(PoolConfig("svc", 1))
    assert alloc.request("held", "a/dev") == ["held"]
    for lease in ("given-up", "next", "last"):
        assert alloc.request(lease, "b/dev") == []
    assert alloc.release("given-up") == [], "withdrawing a waiting request grants nothing"
    assert alloc.position("given-up") is None
    assert alloc.snapshot()["waiters"] == {"b/dev": 2}
    # the tenant's other requests stay queued, and the next one moves up to the head
    assert [alloc.position("next"), alloc.position("last")] == [(1, 2), (2, 2)]
    order = [lease for done in ("held", "next", "last") for lease in alloc.release(done)]
    assert order == ["next", "last"], "a withdrawn request was granted, or a queued one lost"
    assert alloc.snapshot() == {"capacity": 1, "rate": None, "used": 0, "holders": {}, "waiters": {}}
    assert alloc.release("never-asked") == [], "releasing an unknown lease is a no-op"


def test_withdrawing_a_request_too_big_for_the_free_tokens_lets_the_one_behind_it_in():
    alloc = Allocator(PoolConfig("svc", 2))
    assert alloc.request("held", "a/dev") == ["held"]
    assert alloc.request("big", "b/dev", count=2) == [], "two tokens asked, one free: it waits"
    assert alloc.request("small", "b/dev") == [], "behind its tenant's head, though one would fit"
    assert alloc.release("big") == ["small"], "the free token stayed idle after the head was withdrawn"
    assert alloc.snapshot()["holders"] == {"a/dev": 1, "b/dev": 1}


def test_withdrawing_a_waiting_request_keeps_the_priority_order_of_the_rest():
    alloc = Allocator(PoolConfig("svc", 1))
    assert alloc.request("held", "a/dev") == ["held"]
    for lease, priority in (("urgent", 9), ("low", 1), ("middle", 5)):
        assert alloc.request(lease, "b/dev", priority=priority) == []
    assert alloc.release("urgent") == []
    order = [lease for done in ("held", "middle", "low") for lease in alloc.release(done)]
    assert order == ["middle", "low"], "after a withdrawal a lower priority went first"


def test_asking_again_keeps_a_waiting_requests_place_and_it_is_granted_once():
    alloc = Allocator(PoolConfig("svc", 1))
    assert alloc.request("held", "a/dev") == ["held"]
    assert alloc.request("first", "b/dev") == []
    assert alloc.request("second", "b/dev") == []
    assert alloc.request("first", "b/dev") == [], "asking again is a no-op"
    assert [alloc.position("first"), alloc.position("second")] == [(1, 2), (2, 2)]
    order = [lease for done in ("held", "first", "second") for lease in alloc.release(done)]
    assert order == ["first", "second"]
    assert alloc.snapshot() == {"capacity": 1, "rate": None, "used": 0, "holders": {}, "waiters": {}}


def test_next_refill_is_the_moment_the_bucket_holds_a_token_again():
    alloc = Allocator(PoolConfig("svc", 2, rate=2.0))  # a bucket of two, refilled at two a second
    assert alloc.request("r1", "a/dev", now=0.0) == ["r1"]
    assert alloc.request("r2", "a/dev", now=0.0) == ["r2"]  # the bucket is empty
    assert alloc.request("r3", "a/dev", now=0.0) == []
    assert alloc.release("r1", now=0.25) == [], "granted with half a token in the bucket"
    assert alloc.next_refill(0.25) == 0.5  # half a token missing, at two a second
    assert alloc.grant(now=0.375) == []  # three quarters of a token
    assert alloc.next_refill(0.375) == 0.5
    assert alloc.grant(now=0.5) == ["r3"], "the bucket held a whole token at next_refill's time"
    assert alloc.next_refill(0.5) is None, "nothing waits"


def test_next_refill_is_none_while_the_bucket_holds_a_token():
    # the bucket holds a whole token, so what waits waits for capacity, not for the rate: there
    # is no refill to wait for (a time here makes the in-process manager wake up for nothing)
    alloc = Allocator(PoolConfig("svc", 2, rate=1.0))
    assert alloc.request("one", "a/dev", now=0.0) == ["one"]  # one token left in the bucket
    assert alloc.request("pair", "b/dev", count=2, now=0.0) == []  # needs two free tokens
    assert alloc.next_refill(0.0) is None
    assert alloc.release("one", now=0.0) == ["pair"], "the bucket's token was not there to grant it"


def test_a_rate_limited_pool_grants_no_faster_than_its_rate():
    alloc = Allocator(PoolConfig("svc", 10, rate=2.0))
    for i in range(20):
        alloc.request(f"r{i}", "a/dev", now=0.0)
    assert alloc.used == 10  # the bucket starts full: a burst of up to capacity
    for lease in list(alloc.leases):
        alloc.release(lease, now=0.0)
    assert alloc.used == 0  # nothing refilled yet
    assert alloc.grant(now=1.0) and alloc.used == 2  # two per second
    assert alloc.next_refill(1.0) == pytest.approx(1.5)


def simulate(capacity: int, arrivals: dict[str, tuple[float, int]], weights: dict[str, float],
             duration: float = 1.0) -> tuple[dict[str, list[tuple[float, int]]], dict[str, float]]:
    """Discrete-event run: each tenant submits ``n`` queries of ``duration`` at its arrival time.

    Returns each tenant's (time, tokens held) after every change, and its first start time.
    """
    alloc = Allocator(PoolConfig("svc", capacity), weights)
    events: list[tuple[float, int, str, str]] = []  # (time, order, kind, lease or tenant)
    order = 0
    for tenant, (at, _) in arrivals.items():
        events.append((at, order, "arrive", tenant))
        order += 1
    heapq.heapify(events)
    held_over_time: dict[str, list[tuple[float, int]]] = {t: [] for t in arrivals}
    first_start: dict[str, float] = {}

    def started(granted: list[str], now: float) -> None:
        nonlocal order
        for lease in granted:
            tenant = alloc.leases[lease].tenant
            first_start.setdefault(tenant, now)
            heapq.heappush(events, (now + duration, order, "finish", lease))
            order += 1

    while events:
        now, _, kind, what = heapq.heappop(events)
        if kind == "arrive":
            for i in range(arrivals[what][1]):
                started(alloc.request(f"{what}#{i}", what), now)
        else:
            started(alloc.release(what), now)
        if events and events[0][0] == now:
            continue  # record the state once everything at this instant has happened
        for tenant in arrivals:
            held_over_time[tenant].append((now, alloc.held.get(tenant, 0)))
    return held_over_time, first_start


def test_scenario_three_tenants_weights_1_1_2_share_a_pool_of_4_and_a_late_tenant_starts_at_once():
    weights = {"a/dev": 1.0, "b/dev": 1.0, "c/dev": 2.0, "late/dev": 1.0, "idle/dev": 1.0}
    arrivals = {"a/dev": (0.0, 60), "b/dev": (0.0, 60), "c/dev": (0.0, 60), "late/dev": (10.5, 5)}
    held, first_start = simulate(4, arrivals, weights)
    # a came first to an empty pool and took it (work-conserving, never pre-empted); from the
    # first releases on, while a, b and c are all backlogged, they hold 1, 1 and 2
    for tenant, want in (("a/dev", 1), ("b/dev", 1), ("c/dev", 2)):
        assert {n for t, n in held[tenant] if 1 <= t < 10.5} == {want}
    # the late tenant starts at the very next release after it arrives: within one token
    assert first_start["late/dev"] == 11.0
    # fairness of the weighted throughput over the saturated period
    usage = {t: sum(n for at, n in held[t] if 1 <= at < 10.5) for t in ("a/dev", "b/dev", "c/dev")}
    assert jain_index([usage[t] / weights[t] for t in usage]) > 0.99


# ---------------------------------------------------------------------------------------
# The engine enforces a task type's pools
# ---------------------------------------------------------------------------------------


class PooledPython(PythonTask):
    """The python task type, declaring one token of the pool 'svc:test' per attempt."""

    name = "pooled"

    def pools(self, task, config):
        return {"svc:test": 1}


@plait.task(task_type="pooled")
def query(i: int, log: str, seconds: float) -> int:
    with open(log, "a") as fh:
        fh.write(f"start {i} {time.time()}\n")
    time.sleep(seconds)
    with open(log, "a") as fh:
        fh.write(f"end {i} {time.time()}\n")
    return i


@plait.task
def count_to(n: int) -> list[int]:
    return list(range(n))


@plait.workflow
def flood(n: int, log: str, seconds: float) -> list[int]:
    return plait.map(query, over=count_to(n=n), log=log, seconds=seconds)


@plait.workflow
def backlog(items: list[int], log: str, seconds: float) -> list[int]:
    """Every item asks for its tokens at once: far more requests wait than the pool runs."""
    return plait.map(query, over=items, log=log, seconds=seconds, concurrency=64)


def backlog_inputs(engine: Engine, n: int, log: Path, seconds: float) -> dict:
    return encode_inputs(backlog, {"items": list(range(n)), "log": str(log), "seconds": seconds}, engine)


def waiters(engine: Engine, tenant: str, pool: str = "svc:test") -> int:
    return engine.tokens.snapshot().get(pool, {}).get("waiters", {}).get(tenant, 0)


async def until(condition, what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def times(log: Path, kind: str) -> list[float]:
    return sorted(float(line.split()[2]) for line in log.read_text().splitlines() if line.startswith(kind))


@pytest.fixture
def make_pooled(monkeypatch):
    """Build an engine that knows the 'pooled' task type, after setting its environment."""
    made: list[Engine] = []

    def make(**env: str) -> Engine:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        engine = build_engine()
        engine.registry.task_types["pooled"] = PooledPython()
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.registry.task_types.pop("pooled").close()
        engine.close()


@pytest.fixture
def pooled(monkeypatch):
    monkeypatch.setenv("PLAIT_POOLS", "svc:test=2")
    engine = build_engine()
    engine.registry.task_types["pooled"] = task_type = PooledPython()
    yield engine
    task_type.close()
    del engine.registry.task_types["pooled"]
    engine.close()


def most_at_once(log: Path) -> int:
    running = peak = 0
    for line in sorted(log.read_text().splitlines(), key=lambda entry: float(entry.split()[2])):
        running += 1 if line.startswith("start") else -1
        peak = max(peak, running)
    return peak


def test_the_engine_never_runs_more_attempts_than_the_pool_allows(pooled, tmp_path):
    log = tmp_path / "log"
    execution = plait.run(flood, {"n": 6, "log": str(log), "seconds": 0.3}, engine=pooled)
    assert execution.outputs == {"o0": list(range(6))}
    assert most_at_once(log) == 2
    waits = [e for e in pooled.store.events(execution.execution_id) if e.phase == "waiting_for_resources"]
    assert waits, "no attempt was recorded as waiting for its tokens"
    assert waits[0].data["waiting"]["pool"] == "svc:test" and waits[0].data["waiting"]["position"] >= 1
    assert pooled.tokens.snapshot()["svc:test"]["used"] == 0, "a token leaked"


def test_a_tenant_flooding_a_pool_does_not_starve_another(pooled, tmp_path):
    flood_log, small_log = tmp_path / "flood", tmp_path / "small"

    async def both():
        big = asyncio.create_task(pooled.run(backlog.spec, backlog_inputs(pooled, 20, flood_log, 0.2),
                                             RunOptions(project="loud", domain="prod")))
        # the whole flood is queued (two run, eighteen wait) before the quiet tenant asks
        await until(lambda: waiters(pooled, "loud/prod") == 18 or big.done(), "the flood to queue")
        small = await pooled.run(backlog.spec, backlog_inputs(pooled, 2, small_log, 0.2),
                                 RunOptions(project="quiet", domain="prod"))
        return await big, small

    big, small = asyncio.run(both())
    assert big.phase.value == small.phase.value == "succeeded"
    ends = times(flood_log, "end")
    # the quiet tenant got its fair half of the pool as soon as tokens freed: it finished long
    # before the flood did (first come, first served would have run it after all twenty)
    assert max(times(small_log, "end")) < ends[len(ends) // 2]


def test_config_comes_from_plait_toml_and_the_environment(tmp_path, monkeypatch):
    (tmp_path / "plait.toml").write_text(
        '[pools."snowflake:acme"]\ncapacity = 4\nrate = 2.5\n'
        '[tenants."analytics/prod"]\nweight = 2\ncaps = { "snowflake:acme" = 3 }\n')
    monkeypatch.setenv("PLAIT_POOLS", "bigquery:p=10")
    config = TokenConfig.load(tmp_path)
    assert config.pools["snowflake:acme"] == PoolConfig("snowflake:acme", 4, 2.5)
    assert config.pools["bigquery:p"].capacity == 10
    assert config.weights == {"analytics/prod": 2.0}
    assert config.caps == {"analytics/prod": {"snowflake:acme": 3}}


def test_plait_pools_shows_holders_and_waiters_of_a_running_execution(pooled, tmp_path):
    import subprocess
    import sys
    import threading

    log = tmp_path / "log"
    done = threading.Event()

    def run() -> None:
        plait.run(flood, {"n": 6, "log": str(log), "seconds": 1.0}, engine=pooled)
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    while not log.exists():
        time.sleep(0.05)
    time.sleep(0.5)  # the events are written
    out = subprocess.run([sys.executable, "-m", "plait.cli", "pools"], capture_output=True, text=True,
                         check=True, env={**__import__("os").environ, "COLUMNS": "200"}).stdout
    thread.join(60)
    assert done.is_set()
    row = next(line for line in out.splitlines() if "svc:test" in line)
    cells = [c.strip() for c in row.split("│")[1:-1]]
    assert cells[0] == "svc:test" and cells[1] == "2" and cells[3] == "default/development"
    assert cells[4] == "2" and int(cells[5]) >= 1, out


def test_aborting_an_execution_releases_held_tokens_and_withdraws_waiting_requests(pooled, tmp_path):
    log = tmp_path / "log"

    async def run_then_cancel():
        task = asyncio.create_task(pooled.run(
            flood.spec, encode_inputs(flood, {"n": 5, "log": str(log), "seconds": 30.0}, pooled)))
        while not log.exists() or len(log.read_text().splitlines()) < 2:
            await asyncio.sleep(0.05)
        snapshot = pooled.tokens.snapshot()["svc:test"]
        task.cancel()
        return snapshot, await task

    during, result = asyncio.run(run_then_cancel())
    assert during["used"] == 2 and during["waiters"]["default/development"] >= 1
    assert result.phase.value == "aborted"
    after = pooled.tokens.snapshot()["svc:test"]
    assert after["used"] == 0 and after["waiters"] == {}, "tokens leaked past the abort"


def test_within_a_tenant_a_higher_priority_execution_gets_tokens_first(pooled, tmp_path):
    low, high = tmp_path / "low", tmp_path / "high"

    async def both():
        first = asyncio.create_task(pooled.run(backlog.spec, backlog_inputs(pooled, 12, low, 0.3), RunOptions()))
        # two run, ten wait, before the high-priority execution asks
        await until(lambda: waiters(pooled, "default/development") == 10 or first.done(), "the backlog to queue")
        second = await pooled.run(backlog.spec, backlog_inputs(pooled, 2, high, 0.3), RunOptions(priority=5))
        return await first, second

    first, second = asyncio.run(both())
    assert first.phase.value == second.phase.value == "succeeded"
    starts_low, starts_high = times(low, "start"), times(high, "start")
    # the high-priority items jump the queue: they take the next tokens freed, not the last
    assert sum(s < starts_high[-1] for s in starts_low) <= 6, (starts_low, starts_high)


class SlowToNamePools(PooledPython):
    """Looks its pool up (as SageMaker asks STS for the account): slowly, failing the first time."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    def pools(self, task, config):
        self.asked += 1
        time.sleep(0.2)
        if self.asked == 1:
            raise ConnectionError("the account service did not answer")
        return {"svc:test": 1}


def test_a_map_asks_for_its_pools_once_and_again_only_after_a_failure(pooled, tmp_path, fast_retries):
    slow = SlowToNamePools()
    pooled.registry.task_types["pooled"] = slow
    try:
        execution = plait.run(flood, {"n": 6, "log": str(tmp_path / "log"), "seconds": 0.0}, engine=pooled,
                              options=fast_retries())
    finally:
        slow.close()
    assert execution.phase.value == "succeeded", execution.error
    assert slow.asked == 2, "items starting together should share one lookup, and a failed one is asked again"
    failed = [e for e in pooled.store.events(execution.execution_id) if e.phase == "failed"]
    assert failed and "could not name its pools: the account service did not answer" in failed[0].data["message"]


# ---------------------------------------------------------------------------------------
# What the README promises about tokens, through the engine and the CLI
# ---------------------------------------------------------------------------------------


def run_within(engine: Engine, coroutine, seconds: float = 60.0):
    """Run an execution, failing (not hanging) if it never ends."""
    async def bounded():
        return await asyncio.wait_for(coroutine, seconds)

    return asyncio.run(bounded())


def test_a_pool_with_a_rate_starts_attempts_no_faster_than_its_rate(make_pooled, tmp_path):
    engine = make_pooled(PLAIT_POOLS="svc:test=2/4")  # two at once, four starts a second
    execution = run_within(engine, engine.run(backlog.spec, backlog_inputs(engine, 10, tmp_path / "log", 0.0)))
    assert execution.phase.value == "succeeded", execution.error
    starts = sorted(e.ts for e in engine.store.events(execution.execution_id)
                    if e.kind == "item" and e.phase == "running")
    assert len(starts) == 10
    # the bucket starts full (a burst of two), then refills at four a second; one token of
    # slack for the time between a grant and its event
    for i, j in itertools.combinations(range(10), 2):
        assert j - i + 1 <= 2 + 4 * (starts[j] - starts[i]) + 1, \
            f"{j - i + 1} starts in {starts[j] - starts[i]:.2f}s: faster than 4 a second"


def test_tenant_weights_from_the_environment_share_a_pool_through_the_engine(make_pooled, tmp_path):
    engine = make_pooled(PLAIT_POOLS="svc:test=4", PLAIT_TENANT_WEIGHTS="heavy/prod=3")

    async def both():
        heavy = asyncio.create_task(engine.run(backlog.spec, backlog_inputs(engine, 16, tmp_path / "heavy", 0.2),
                                               RunOptions(project="heavy", domain="prod")))
        await until(lambda: waiters(engine, "heavy/prod") == 12 or heavy.done(), "the heavy backlog to queue")
        light = asyncio.create_task(engine.run(backlog.spec, backlog_inputs(engine, 16, tmp_path / "light", 0.2),
                                               RunOptions(project="light", domain="prod")))
        seen = []
        while not (heavy.done() and light.done()):  # the pool whenever both tenants have work waiting
            pool = engine.tokens.snapshot()["svc:test"]
            if len(pool["waiters"]) == 2:
                seen.append(pool["holders"])
            await asyncio.sleep(0.01)
        return await heavy, await light, seen

    heavy, light, seen = run_within(engine, both())
    assert heavy.phase.value == light.phase.value == "succeeded"
    shared = {"heavy/prod": 3, "light/prod": 1}
    assert shared in seen, "the two tenants never shared the pool three to one"
    assert all(holders in ({"heavy/prod": 4}, shared) for holders in seen), seen


class Greedy(PooledPython):
    """Asks for three tokens of 'svc:test' per attempt."""

    name = "greedy"

    def pools(self, task, config):
        return {"svc:test": 3}


@plait.task(task_type="greedy", retries=3)
def greedy(i: int) -> int:
    return i


@plait.workflow
def one_greedy(i: int) -> int:
    return greedy(i=i)


@pytest.mark.parametrize("pools, toml, message", [
    ("svc:test=2", "", "pool 'svc:test': a request for 3 tokens can never be granted; the pool's capacity is 2"),
    ("svc:test=8", '[tenants."default/development"]\ncaps = { "svc:test" = 2 }\n',
     "pool 'svc:test': a request for 3 tokens can never be granted; tenant default/development's cap is 2"),
], ids=["over-the-pool", "over-the-cap"])
def test_a_request_larger_than_the_pool_or_the_cap_fails_the_execution_at_once(
        make_pooled, tmp_path, monkeypatch, pools, toml, message):
    (tmp_path / "plait.toml").write_text(toml)
    monkeypatch.chdir(tmp_path)  # the engine reads plait.toml from here
    engine = make_pooled(PLAIT_POOLS=pools)
    engine.registry.task_types["greedy"] = Greedy()
    try:
        execution = run_within(engine, engine.run(one_greedy.spec, encode_inputs(one_greedy, {"i": 1}, engine)))
    finally:
        engine.registry.task_types.pop("greedy").close()
    assert execution.phase.value == "failed"
    assert message in str(execution.error)
    attempts = [e for e in engine.store.events(execution.execution_id) if e.kind == "attempt"]
    assert [e.phase for e in attempts] == ["failed"], "it waited for tokens or was retried"
    assert attempts[0].data["error_kind"] == "user"


@plait.task(task_type="pooled")
def hold_until(path: str) -> str:
    deadline = time.time() + 120
    while not Path(path).exists() and time.time() < deadline:
        time.sleep(0.02)
    return path


@plait.workflow
def gate(path: str) -> str:
    return hold_until(path=path)


def test_plait_executions_show_names_the_pool_and_the_place_of_a_waiting_attempt(make_pooled, tmp_path):
    engine = make_pooled(PLAIT_POOLS="svc:test=1")
    opened = tmp_path / "open"

    def start(execution_id: str) -> asyncio.Task:
        return asyncio.create_task(engine.run(gate.spec, encode_inputs(gate, {"path": str(opened)}, engine),
                                              RunOptions(execution_id=execution_id)))

    async def show_while_waiting():
        runs = [start("holder")]
        await until(lambda: engine.tokens.snapshot().get("svc:test", {}).get("used") == 1, "the holder's token")
        runs += [start("first-waiter"), start("second-waiter")]
        await until(lambda: waiters(engine, "default/development") == 2, "two executions to queue")
        deadline = time.monotonic() + 30
        while True:  # the events reach the store within a flush interval
            shown = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "plait.cli", "executions", "show", "second-waiter",
                stdout=asyncio.subprocess.PIPE, env={**os.environ, "COLUMNS": "250"})
            out = (await shown.communicate())[0].decode()
            if "waiting" in out or time.monotonic() > deadline:
                break
        opened.touch()
        return out, await asyncio.gather(*runs)

    out, results = run_within(engine, show_while_waiting())
    assert [r.phase.value for r in results] == ["succeeded"] * 3
    assert "waiting for svc:test: place 2 of default/development's queue, 2 waiting in the pool" in out, out
    waited = [e for e in engine.store.events("second-waiter") if e.phase == "waiting_for_resources"]
    assert [e.kind for e in waited] == ["attempt"], "the event log does not show the attempt waiting"
    assert waited[0].data["waiting"] == {"pool": "svc:test", "position": 2, "queued": 2,
                                         "tenant": "default/development"}
