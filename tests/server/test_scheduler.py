"""Schedules fire once per fire time: the fire-time rules, and schedulers in real servers.

The rules (:mod:`plait.model.schedule_times`) are pure and tested directly: cron in a zone whose
clocks change, fixed rates, catch-up, refused expressions. The scheduler runs in real ``plait
server`` processes against one store, with the clock they fire by set through
``PLAIT_SERVER_CLOCK_FILE``, so a simulated hour runs in seconds; every wait is on something
observable (the schedule's recorded last fire time, the lease's holder), with a deadline.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import plait
import pytest
import sqlalchemy as sa
from harness import STORES, ServerProcess, bootstrap, server_env, store_url, wait_for
from hypothesis import given, settings
from hypothesis import strategies as st
from plait.model.errors import InputError
from plait.model.registered import LaunchPlanSpec, RegisteredWorkflow, Schedule
from plait.model.schedule_times import (
    check_schedule,
    due_fire_times,
    fire_times,
    next_fire_time,
    scheduled_execution_id,
)
from plait.service.remote_launch import launch_registered
from plait.storage.entities import EntityStore, active_launch_plans
from plait.storage.events import EventStore, executions
from plait.storage.queue import queue
from plait.storage.schedules import ScheduleStore, leases, schedule_state
from plait.types.engine import ValueIO, decode_values

T0 = 1_800_000_000.0
"""A whole minute (2027-01-15 08:00 UTC): when the test launch plans are activated."""

MINUTE = 60.0


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[misc]


def wall(times: Iterator[float] | list[float], zone: str) -> list[str]:
    return [datetime.fromtimestamp(t, ZoneInfo(zone)).strftime("%m-%d %H:%M%z") for t in times]


# -- the fire-time rules -------------------------------------------------------------------------


def test_cron_skips_the_wall_time_clocks_jump_over_in_spring():
    # Berlin, 29 March 2026: clocks go from 02:00 to 03:00, so 02:30 does not exist that day.
    daily = Schedule(cron="30 2 * * *", timezone="Europe/Berlin")
    times = fire_times(daily, utc(2026, 3, 27), utc(2026, 3, 31), anchor=0)
    assert wall(times, "Europe/Berlin") == ["03-27 02:30+0100", "03-28 02:30+0100", "03-30 02:30+0200"]


def test_cron_fires_once_in_the_hour_clocks_repeat_in_autumn():
    # New York, 1 November 2026: 01:00-02:00 happens twice (EDT, then EST); each wall time fires once.
    schedule = Schedule(cron="0,30 1,2 * * *", timezone="America/New_York")
    times = list(fire_times(schedule, utc(2026, 11, 1, 4), utc(2026, 11, 1, 9), anchor=0))
    assert wall(times, "America/New_York") == [
        "11-01 01:00-0400", "11-01 01:30-0400", "11-01 02:00-0500", "11-01 02:30-0500"]
    assert times == sorted(times)


def test_cron_is_read_in_its_time_zone():
    nine = Schedule(cron="0 9 * * mon-fri", timezone="Asia/Tokyo")
    # Friday 15 January 2027 00:00 UTC is 09:00 in Tokyo; the weekend does not fire.
    times = list(fire_times(nine, utc(2027, 1, 14, 1), utc(2027, 1, 18, 23), anchor=0))
    assert wall(times, "Asia/Tokyo") == ["01-15 09:00+0900", "01-18 09:00+0900"]


def test_cron_day_fields_match_either_when_both_are_restricted():
    # The 13th of the month, or a Friday (Vixie cron): in February 2027 the 5th, 12th, 13th, 19th, 26th.
    schedule = Schedule(cron="0 0 13 * fri")
    days = [datetime.fromtimestamp(t, UTC).day
            for t in fire_times(schedule, utc(2027, 2, 1), utc(2027, 3, 1) - 1, anchor=0)]
    assert days == [5, 12, 13, 19, 26]


def brute_force(cron: str, zone: str, after: float, until: float) -> list[float]:
    """Every whole minute in (after, until] whose wall time matches, read field by field: the
    rules restated independently of the iteration over days the scheduler uses."""
    fields = cron.split()

    def allowed(text: str, low: int, high: int) -> set[int]:
        found: set[int] = set()
        for item in text.split(","):
            span, _, step = item.partition("/")
            first, last = (low, high) if span == "*" else (int(span.split("-")[0]), int(span.split("-")[-1]))
            if step and span != "*" and "-" not in span:
                last = high
            found.update(range(first, last + 1, int(step or 1)))
        return found

    minutes, hours, days, months = (allowed(f, lo, hi) for f, lo, hi in
                                    zip(fields, (0, 0, 1, 1), (59, 23, 31, 12)))
    weekdays = {(d - 1) % 7 for d in allowed(fields[4], 0, 7)}
    tz = ZoneInfo(zone)
    times = []
    for t in range(int(after // 60 + 1) * 60, int(until) + 1, 60):
        local = datetime.fromtimestamp(t, tz)
        if local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset():
            continue  # the second pass through a repeated hour
        in_month, in_week = local.day in days, local.weekday() in weekdays
        day_ok = (in_month and in_week) if fields[2].startswith("*") or fields[4].startswith("*") \
            else (in_month or in_week)
        if local.minute in minutes and local.hour in hours and local.month in months and day_ok:
            times.append(float(t))
    return times


def cron_field(low: int, high: int) -> st.SearchStrategy[str]:
    value = st.integers(low, high)
    item = st.one_of(st.just("*"), value.map(str), st.tuples(value, value).map(lambda r: f"{min(r)}-{max(r)}"),
                     st.tuples(st.sampled_from(["*", str(low)]), st.integers(1, 7)).map(lambda p: f"{p[0]}/{p[1]}"))
    return st.lists(item, min_size=1, max_size=3).map(",".join)


@settings(max_examples=60, deadline=None)
@given(minute=cron_field(0, 59), hour=cron_field(0, 23), day=cron_field(1, 31), month=st.just("*"),
       weekday=cron_field(0, 7), zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]),
       start=st.sampled_from([utc(2026, 3, 27), utc(2026, 3, 6), utc(2026, 10, 23), utc(2026, 10, 30), utc(2026, 4, 2)]),
       split=st.floats(0, 1))
def test_cron_fire_times_match_a_minute_by_minute_reading_and_split_anywhere(
        minute, hour, day, month, weekday, zone, start, split):
    """Around daylight-saving changes (Lord Howe moves by half an hour), in both directions:
    what fires in (a, c] is what fires in (a, b] then (b, c], as consecutive ticks see it."""
    schedule = Schedule(cron=f"{minute} {hour} {day} {month} {weekday}", timezone=zone)
    until = start + 4 * 86400
    middle = start + split * (until - start)
    expected = brute_force(schedule.cron, zone, start, until)  # type: ignore[arg-type]
    assert list(fire_times(schedule, start, until, anchor=0)) == expected
    assert list(fire_times(schedule, start, middle, anchor=0)) + list(fire_times(schedule, middle, until, anchor=0)) \
        == expected
    assert list(fire_times(schedule, start, until, anchor=0, reverse=True)) == expected[::-1]


def test_a_fixed_rate_counts_from_its_anchor_and_excludes_it():
    every = Schedule(every_s=90)
    assert list(fire_times(every, T0 - 1000, T0 + 300, anchor=T0)) == [T0 + 90, T0 + 180, T0 + 270]
    assert list(fire_times(every, T0 + 90, T0 + 270, anchor=T0)) == [T0 + 180, T0 + 270]
    assert list(fire_times(every, T0 + 90, T0 + 270, anchor=T0, reverse=True)) == [T0 + 270, T0 + 180]
    assert next_fire_time(every, T0 + 100, anchor=T0) == T0 + 180


def test_fractional_rates_neither_drop_nor_repeat_a_fire_time():
    every = Schedule(every_s=0.1)
    seen: list[float] = []
    last = T0
    for step in range(1, 40):
        now = T0 + step * 0.37
        seen += fire_times(every, last, now, anchor=T0)
        last = seen[-1] if seen else last
    assert len(seen) == len(set(seen)) == len(list(fire_times(every, T0, T0 + 39 * 0.37, anchor=T0)))


def test_catch_up_latest_keeps_only_the_most_recent_fire_time():
    assert due_fire_times(Schedule(every_s=60, catch_up="latest"), T0, T0 + 600, T0) == [T0 + 600]


def test_catch_up_all_keeps_every_missed_fire_time_up_to_its_cap():
    assert due_fire_times(Schedule(every_s=60, catch_up="all"), T0, T0 + 600, T0) == [
        T0 + 60 * k for k in range(1, 11)]
    capped = Schedule(every_s=60, catch_up="all", max_catch_up=3)
    assert due_fire_times(capped, T0, T0 + 600, T0) == [T0 + 480, T0 + 540, T0 + 600]


def test_nothing_is_due_before_the_next_fire_time():
    assert due_fire_times(Schedule(cron="*/5 * * * *", catch_up="all"), T0, T0 + 299, T0) == []


@pytest.mark.parametrize(("schedule", "message"), [
    (Schedule(cron="* * * *"), "has 4 fields; it needs five"),
    (Schedule(cron="61 * * * *"), "minute field '61' has 61, outside 0-59"),
    (Schedule(cron="0 24 * * *"), "hour field '24' has 24, outside 0-23"),
    (Schedule(cron="*/0 * * * *"), "step '0'"),
    (Schedule(cron="0 0 * jam *"), "month field 'jam' has 'jam', not a number or a name"),
    (Schedule(cron="0 0 5-1 * *"), "runs backwards"),
    (Schedule(cron="0 0 30 2 *"), "matches no day"),
    (Schedule(cron="@often"), "it needs five"),
    (Schedule(cron="0 9 * * *", timezone="Europe/Atlantis"), "unknown time zone 'Europe/Atlantis'"),
])
def test_a_schedule_that_cannot_fire_is_refused_naming_what_is_wrong(schedule, message):
    with pytest.raises(InputError, match=message.replace("*", r"\*").replace("(", r"\(")):
        check_schedule(schedule)


@pytest.mark.parametrize("cron", ["*/15 9-17 * * 1-5", "0 0 1,15 * *", "@hourly", "0 12 * JAN,jul SUN",
                                  "5 4 * * 7", "0 0 29 2 *"])
def test_good_cron_expressions_are_accepted(cron):
    check_schedule(Schedule(cron=cron, timezone="Europe/London"))


def test_a_scheduled_execution_id_is_the_same_for_every_scheduler_and_differs_per_fire_time():
    one = scheduled_execution_id("pricing", "production", "nightly", "v1", T0)
    assert one == scheduled_execution_id("pricing", "production", "nightly", "v1", T0)
    assert one.startswith("20270115-080000-s") and len(one) <= 64
    others = {scheduled_execution_id("pricing", "production", "nightly", "v1", T0 + 60),
              scheduled_execution_id("pricing", "production", "nightly", "v2", T0),
              scheduled_execution_id("pricing", "staging", "nightly", "v1", T0),
              scheduled_execution_id("mapping", "production", "nightly", "v1", T0)}
    assert one not in others and len(others) == 4


# -- a store with scheduled launch plans -----------------------------------------------------------


@plait.task
def stamp(day: str) -> str:
    return day


@plait.workflow
def nightly(day: str = "today", when: dt.datetime | None = None) -> str:
    return stamp(day=day)


def register_scheduled(db_url: str, name: str, schedule: Schedule, version: str = "v1",
                       activated: float = T0, project: str = "pricing", domain: str = "development") -> None:
    """Register ``nightly`` and launch plan ``name`` with ``schedule``, and make that version
    active at ``activated`` (as registration's activation does, with a time the test chooses)."""
    store = EventStore(db_url)
    try:
        entities = EntityStore(store)
        entities.register(project, domain, "workflow", "nightly", "w1",
                          RegisteredWorkflow(spec=nightly.spec.model_dump(mode="json")).model_dump(mode="json"))
        plan = LaunchPlanSpec(name=name, workflow="nightly", workflow_version="w1", schedule=schedule)
        entities.register(project, domain, "launch_plan", name, version, plan.model_dump(mode="json"))
        with store.engine.begin() as conn:
            key = dict(project=project, domain=domain, name=name)
            conn.execute(active_launch_plans.delete().filter_by(**key))
            conn.execute(active_launch_plans.insert().values(**key, version=version, activated=activated))
    finally:
        store.close()


_engines: dict[str, sa.Engine] = {}


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    yield
    while _engines:
        _engines.popitem()[1].dispose()


def query_rows(db_url: str, select: Any) -> list[Any]:
    """What ``select`` reads from the servers' store, through this test's own engine."""
    engine = _engines.get(db_url) or _engines.setdefault(db_url, sa.create_engine(db_url))
    with engine.connect() as conn:
        return list(conn.execute(select).all())


def query(db_url: str, select: Any) -> list[Any]:
    """The first column of what ``select`` reads."""
    return [row[0] for row in query_rows(db_url, select)]


def scheduled(db_url: str, launch_plan: str | None = None) -> list[str]:
    """The ids of the executions schedules started (of one launch plan if named)."""
    select = sa.select(executions.c.id).where(executions.c.launched_by == "schedule",
                                              executions.c.launch_plan.is_not(None))
    if launch_plan is not None:
        select = select.where(executions.c.launch_plan == launch_plan)
    return query(db_url, select)


def last_fire(db_url: str, launch_plan: str) -> float | None:
    found = query(db_url, sa.select(schedule_state.c.last_fire).where(schedule_state.c.launch_plan == launch_plan))
    return found[0] if found else None


def leader_pid(db_url: str) -> int:
    """The process id of the server whose scheduler holds the lease (holders are host:pid:nonce)."""
    holders = query(db_url, sa.select(leases.c.holder).where(leases.c.name == "scheduler"))
    assert holders, "no scheduler holds the lease"
    return int(holders[0].split(":")[1])


def ids_for(name: str, times: list[float], version: str = "v1") -> set[str]:
    return {scheduled_execution_id("pricing", "development", name, version, t) for t in times}


# -- the scheduler in this process ------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'plait.db'}"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def scheduler_over(db_url: str, clock: Clock, holder: str = "here") -> Any:
    from plait_server.scheduler import Scheduler
    return Scheduler(EventStore(db_url), clock=clock, holder=holder, lease_s=60)


def test_a_first_activation_fires_from_its_activation_time_not_before(sqlite_url):
    register_scheduled(sqlite_url, "every-minute", Schedule(cron="* * * * *", catch_up="all"), activated=T0 + 30)
    started = scheduler_over(sqlite_url, Clock(T0 + 150)).tick()
    assert set(started) == set(scheduled(sqlite_url)) == ids_for("every-minute", [T0 + 60, T0 + 120])
    assert last_fire(sqlite_url, "every-minute") == T0 + 120


def test_only_the_active_version_fires_and_from_its_own_activation(sqlite_url):
    register_scheduled(sqlite_url, "every-minute", Schedule(cron="* * * * *", catch_up="all"), version="v1")
    clock = Clock(T0 + 60)
    scheduler = scheduler_over(sqlite_url, clock)
    assert scheduler.tick() == list(ids_for("every-minute", [T0 + 60], "v1"))
    register_scheduled(sqlite_url, "every-minute", Schedule(cron="* * * * *", catch_up="all"), version="v2",
                       activated=T0 + 150)
    clock.now = T0 + 250  # +120 passed while v1 was active but unhandled: it belongs to no active version
    assert set(scheduler.tick()) == ids_for("every-minute", [T0 + 180, T0 + 240], "v2")
    assert len(scheduled(sqlite_url)) == 3


def test_the_fire_time_is_passed_into_the_named_input(sqlite_url):
    register_scheduled(sqlite_url, "stamped", Schedule(every_s=60, fire_time_input="when", catch_up="all"))
    started = scheduler_over(sqlite_url, Clock(T0 + 120)).tick()
    inputs = {row.execution_id: json.loads(row.inputs)
              for row in query_rows(sqlite_url, sa.select(queue.c.execution_id, queue.c.inputs))}
    assert inputs == {started[0]: {"day": "today", "when": "2027-01-15T08:01:00+00:00"},
                      started[1]: {"day": "today", "when": "2027-01-15T08:02:00+00:00"}}


def test_the_fire_time_is_passed_in_the_schedules_own_time_zone(sqlite_url):
    """00:30 in Paris is 23:30 UTC the day before: the workflow gets the Paris date, as a
    datetime or (for a str input) as its ISO text, with Paris's offset."""
    at_half_past_midnight = plait.Cron("30 0 * * *", timezone="Europe/Paris", fire_time_input="when")
    register_scheduled(sqlite_url, "paris", at_half_past_midnight)
    register_scheduled(sqlite_url, "paris-text", at_half_past_midnight.model_copy(update={"fire_time_input": "day"}))
    fire = utc(2027, 1, 14, 23, 30)
    store = EventStore(sqlite_url)
    try:
        as_datetime = launch_registered(store, None, "pricing", "development", launch_plan="paris", fire_time=fire)
        as_text = launch_registered(store, None, "pricing", "development", launch_plan="paris-text",
                                    fire_time=datetime.fromtimestamp(fire, UTC))
    finally:
        store.close()
    inputs = {row.execution_id: json.loads(row.inputs)
              for row in query_rows(sqlite_url, sa.select(queue.c.execution_id, queue.c.inputs))}
    assert inputs[as_datetime]["when"] == inputs[as_text]["day"] == "2027-01-15T00:30:00+01:00"
    day = decode_values(inputs[as_datetime], {"when": dt.datetime}, ValueIO(None), what="input")["when"]
    assert day.date() == dt.date(2027, 1, 15) and day.timestamp() == fire


def test_a_scheduler_firing_a_time_again_starts_nothing(sqlite_url):
    register_scheduled(sqlite_url, "every-minute", Schedule(every_s=60, catch_up="all"))
    clock = Clock(T0 + 180)
    assert len(scheduler_over(sqlite_url, clock).tick()) == 3
    # As if the scheduler had died after starting them but before recording them handled:
    with EventStore(sqlite_url).engine.begin() as conn:
        conn.execute(schedule_state.delete())
    assert len(scheduler_over(sqlite_url, clock).tick()) == 3
    assert len(scheduled(sqlite_url)) == 3
    assert last_fire(sqlite_url, "every-minute") == T0 + 180


def test_only_the_lease_holder_fires(sqlite_url):
    register_scheduled(sqlite_url, "every-minute", Schedule(every_s=60))
    clock = Clock(T0 + 60)
    leader, other = scheduler_over(sqlite_url, clock, "leader"), scheduler_over(sqlite_url, clock, "other")
    assert len(leader.tick()) == 1
    clock.now = T0 + 120
    assert other.tick() == [] and not other.leading
    assert last_fire(sqlite_url, "every-minute") == T0 + 60
    leader.release()
    assert len(other.tick()) == 1 and other.leading


def test_an_expired_lease_is_taken_over_and_a_live_one_is_not(sqlite_url):
    schedules = ScheduleStore(EventStore(sqlite_url))
    assert schedules.hold("scheduler", "a", now=100.0, lease_s=10)
    assert not schedules.hold("scheduler", "b", now=109.0, lease_s=10)
    assert schedules.hold("scheduler", "a", now=109.0, lease_s=10)  # renewed to 119
    assert not schedules.hold("scheduler", "b", now=118.0, lease_s=10)
    assert schedules.hold("scheduler", "b", now=119.5, lease_s=10)
    assert schedules.holder("scheduler", now=119.5) == "b"


def test_the_service_holds_the_lease_while_the_server_runs_and_can_be_switched_off(sqlite_url, monkeypatch):
    from fastapi import FastAPI
    from plait_server.scheduler import start

    app = FastAPI()
    app.state.store, app.state.blobs = EventStore(sqlite_url), None
    monkeypatch.setenv("PLAIT_SERVER_SCHEDULER_TICK_S", "0.05")
    monkeypatch.setenv("PLAIT_SERVER_SCHEDULER", "0")
    start(app)()
    assert not hasattr(app.state, "scheduler") and query(sqlite_url, sa.select(leases.c.holder)) == []
    monkeypatch.setenv("PLAIT_SERVER_SCHEDULER", "1")
    stop = start(app)
    try:
        wait_for(lambda: query(sqlite_url, sa.select(leases.c.holder)) == [app.state.scheduler.holder],
                 "the scheduler to take the lease")
    finally:
        stop()
    assert query(sqlite_url, sa.select(leases.c.holder)) == []


def test_a_tick_as_long_as_the_lease_is_refused(monkeypatch):
    from plait.model.errors import PlaitError
    from plait_server.scheduler import SchedulerSettings

    monkeypatch.setenv("PLAIT_SERVER_SCHEDULER_TICK_S", "20")
    with pytest.raises(PlaitError, match=r"tick \(20s\) must be above 0 and shorter than its lease \(15s\)"):
        SchedulerSettings.from_env()


# -- schedulers in real servers ---------------------------------------------------------------------


class SimulatedClock:
    """The file the servers read the time from (PLAIT_SERVER_CLOCK_FILE)."""

    def __init__(self, path: Path, now: float) -> None:
        self.path = path
        self.set(now)

    def set(self, now: float) -> None:
        self.now = now
        part = self.path.with_suffix(".part")
        part.write_text(repr(now))
        os.replace(part, self.path)  # a server never reads half a number


def scheduler_env(clock: SimulatedClock, lease_s: float = 2.0) -> dict[str, str]:
    return {"PLAIT_SERVER_CLOCK_FILE": str(clock.path), "PLAIT_SERVER_SCHEDULER_TICK_S": "0.05",
            "PLAIT_SERVER_SCHEDULER_LEASE_S": str(lease_s)}


def run_minutes(db_url: str, clock: SimulatedClock, names: list[str], minutes: int,
                servers: list[ServerProcess]) -> None:
    """Advance the clock a minute at a time, each time until every schedule has handled it."""
    for _ in range(minutes):
        clock.set(clock.now + MINUTE)
        wait_for(lambda: all(last_fire(db_url, n) == clock.now for n in names),
                 f"the schedules to fire at {clock.now}", servers=servers)


@contextmanager
def servers(db_url: str, folder: Path, clock: SimulatedClock, count: int,
            lease_s: float = 2.0) -> Iterator[list[ServerProcess]]:
    """``count`` servers with schedulers on ``db_url``, firing by ``clock``; stopped after."""
    procs: list[ServerProcess] = []
    try:
        for i in range(count):
            procs.append(ServerProcess(db_url, folder / f"server{i}", env=scheduler_env(clock, lease_s)).start())
        yield procs
    finally:
        for p in procs:
            p.stop()


def leader_and_other(db_url: str, procs: list[ServerProcess]) -> tuple[ServerProcess, ServerProcess]:
    leader = next(p for p in procs if p.proc is not None and p.proc.pid == leader_pid(db_url))
    return leader, next(p for p in procs if p is not leader)


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    with store_url("postgresql", tmp_path) as url:
        yield url


EVERY_MINUTE = Schedule(cron="* * * * *", catch_up="all")


def minutes(first: int, last: int) -> list[float]:
    return [T0 + MINUTE * k for k in range(first, last + 1)]


@pytest.mark.parametrize(("kind", "count"), [("postgresql", 2), ("sqlite", 1)])
def test_an_hour_of_a_once_a_minute_schedule_starts_exactly_60_executions(tmp_path, kind, count):
    with store_url(kind, tmp_path) as db_url:
        bootstrap(db_url, tmp_path)
        register_scheduled(db_url, "every-minute", Schedule(cron="* * * * *"))
        clock = SimulatedClock(tmp_path / "clock", T0)
        with servers(db_url, tmp_path, clock, count) as procs:
            run_minutes(db_url, clock, ["every-minute"], 60, procs)
            assert all(p.proc is not None and p.proc.poll() is None for p in procs)
        assert len(scheduled(db_url)) == 60
        assert set(scheduled(db_url)) == ids_for("every-minute", minutes(1, 60))


@pytest.mark.parametrize("kind", STORES)
def test_after_a_10_minute_outage_all_starts_10_and_latest_starts_1(tmp_path, kind):
    with store_url(kind, tmp_path) as db_url:
        bootstrap(db_url, tmp_path)
        register_scheduled(db_url, "catch-all", Schedule(cron="* * * * *", catch_up="all"))
        register_scheduled(db_url, "catch-latest", Schedule(every_s=60, catch_up="latest"))
        names = ["catch-all", "catch-latest"]
        clock = SimulatedClock(tmp_path / "clock", T0)
        count = 2 if kind == "postgresql" else 1
        with servers(db_url, tmp_path / "before", clock, count) as procs:
            run_minutes(db_url, clock, names, 1, procs)
        assert len(scheduled(db_url, "catch-all")) == len(scheduled(db_url, "catch-latest")) == 1

        clock.set(T0 + 11 * MINUTE)  # no scheduler runs for ten minutes
        with servers(db_url, tmp_path / "after", clock, count) as procs:
            wait_for(lambda: all(last_fire(db_url, n) == T0 + 11 * MINUTE for n in names),
                     "the schedules to catch up", servers=procs)
        assert set(scheduled(db_url, "catch-all")) == ids_for("catch-all", minutes(1, 11))
        assert set(scheduled(db_url, "catch-latest")) == ids_for("catch-latest", [T0 + MINUTE, T0 + 11 * MINUTE])


def test_leadership_moves_when_the_leader_is_killed_and_nothing_is_duplicated(tmp_path, postgres_url):
    bootstrap(postgres_url, tmp_path)
    register_scheduled(postgres_url, "every-minute", EVERY_MINUTE)
    clock = SimulatedClock(tmp_path / "clock", T0)
    with servers(postgres_url, tmp_path, clock, 2) as procs:
        run_minutes(postgres_url, clock, ["every-minute"], 5, procs)
        leader, other = leader_and_other(postgres_url, procs)
        leader.kill()  # kill -9: the lease is not given up; it expires
        run_minutes(postgres_url, clock, ["every-minute"], 5, [other])
        assert leader_pid(postgres_url) == other.proc.pid  # type: ignore[union-attr]
    assert len(scheduled(postgres_url)) == 10
    assert set(scheduled(postgres_url)) == ids_for("every-minute", minutes(1, 10))


def test_a_leader_stopping_gives_its_lease_up_at_once(tmp_path, postgres_url):
    bootstrap(postgres_url, tmp_path)
    register_scheduled(postgres_url, "every-minute", EVERY_MINUTE)
    clock = SimulatedClock(tmp_path / "clock", T0)
    # A lease far longer than the test: the other server can only take over if it is given up.
    with servers(postgres_url, tmp_path, clock, 2, lease_s=3600) as procs:
        run_minutes(postgres_url, clock, ["every-minute"], 1, procs)
        leader, other = leader_and_other(postgres_url, procs)
        leader.stop()
        run_minutes(postgres_url, clock, ["every-minute"], 1, [other])
        assert leader_pid(postgres_url) == other.proc.pid  # type: ignore[union-attr]
    assert set(scheduled(postgres_url)) == ids_for("every-minute", minutes(1, 2))


SCHEDULED_FLOWS = """
import datetime as dt
from pathlib import Path

import plait


@plait.task
def stamp(when: dt.datetime, out: str) -> str:
    Path(out, plait.current_context().execution_id).write_text(when.isoformat())
    return when.isoformat()


@plait.workflow
def stamped(when: dt.datetime, out: str) -> str:
    return stamp(when=when, out=out)


every_minute = plait.LaunchPlan(stamped, name="every_minute", default_inputs={"out": OUT},
                                schedule=plait.Cron("* * * * *", fire_time_input="when", catch_up="all"))
"""


def test_a_registered_and_activated_schedule_runs_with_its_fire_time(tmp_path):
    """The whole way: `plait register --activate` through the server, the scheduler fires, an
    engine worker runs the task from the code archive with the fire time as its input."""
    db_url = f"sqlite:///{tmp_path / 'server.db'}"
    key = bootstrap(db_url, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    source = tmp_path / "source"
    source.mkdir()
    (source / "scheduled.py").write_text(SCHEDULED_FLOWS.replace("OUT", repr(str(out))))
    clock = SimulatedClock(tmp_path / "clock", time.time() - 3600)  # before the activation: nothing due
    server = ServerProcess(db_url, tmp_path, engines=1, env=scheduler_env(clock))
    with server, server.client(key) as api:
        assert api.post("/projects", json={"name": "alpha"}).status_code == 201
        env = {**server_env("", tmp_path), "PLAIT_SERVER": server.url, "PLAIT_API_KEY": key}
        done = subprocess.run([sys.executable, "-m", "plait.cli", "register", str(source / "scheduled.py"),
                               "--project", "alpha", "--domain", "development", "--version", "v1", "--activate"],
                              env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        shutil.rmtree(source)  # the engine runs it from the code archive
        (plan,) = api.get("/projects/alpha/domains/development/schedules").json()
        assert plan["launch_plan"] == "every_minute" and plan["last_fire"] is None
        clock.set(plan["next_fire"])
        xid = scheduled_execution_id("alpha", "development", "every_minute", "v1", plan["next_fire"])
        wait_for(lambda: api.get(f"/executions/{xid}").json().get("phase") == "succeeded",
                 f"scheduled execution {xid} to succeed", timeout=90, servers=[server])
    fired = datetime.fromtimestamp(plan["next_fire"], UTC).isoformat()
    assert (out / xid).read_text() == fired
    assert scheduled(db_url) == [xid]


@pytest.mark.parametrize("kind", STORES)
def test_the_schedules_route_lists_active_scheduled_plans_with_next_and_last_fire(tmp_path, kind):
    with store_url(kind, tmp_path) as db_url:
        key = bootstrap(db_url, tmp_path)
        register_scheduled(db_url, "every-minute", Schedule(cron="*/5 * * * *", timezone="Europe/Berlin"))
        clock = SimulatedClock(tmp_path / "clock", T0 + 7 * MINUTE)
        with servers(db_url, tmp_path, clock, 1) as (server,), server.client(key) as api:
            assert api.post("/projects", json={"name": "pricing"}).status_code in (200, 201)
            wait_for(lambda: last_fire(db_url, "every-minute") == T0 + 5 * MINUTE, "the first fire", servers=[server])
            listed = api.get("/projects/pricing/domains/development/schedules").json()
            assert [(p["launch_plan"], p["version"], p["last_fire"], p["next_fire"]) for p in listed] == [
                ("every-minute", "v1", T0 + 5 * MINUTE, T0 + 10 * MINUTE)]
            assert listed[0]["schedule"]["cron"] == "*/5 * * * *"
            assert api.get("/projects/pricing/domains/staging/schedules").json() == []
