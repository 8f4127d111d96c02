"""Queued executions claimed by ``plait engine`` processes sharing one real PostgreSQL store.

Two engines serving one queue run every execution exactly once; an engine killed with
``kill -9`` keeps its executions only until its lease expires, and then another engine
resumes them. Each execution's task appends a line naming its engine to a marker file of
its own, so a second run of any execution shows. Tests wait on what the store records.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import plait
import pytest
from engine_process import Run, cli, wait_for
from plait.service.launch import LaunchOptions, launch
from plait.storage.events import EventStore
from plait.storage.queue import ExecutionQueue
from postgres_db import fresh_database

LEASE = 3.0


@plait.task
def mark(tag: str, folder: str, seconds: float) -> str:
    """Append this engine's name to ``folder/tag``, then sleep: one line per run of the execution."""
    with open(Path(folder) / tag, "a") as fh:
        fh.write(os.environ.get("PLAIT_TEST_ENGINE", "?") + "\n")
    time.sleep(seconds)
    return tag


@plait.workflow
def marked(tag: str, folder: str, seconds: float) -> str:
    return mark(tag=tag, folder=folder, seconds=seconds)


@pytest.fixture
def pg_url(plait_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database of this test's own, as ``PLAIT_DB_URL``; dropped afterwards."""
    with fresh_database() as url:
        monkeypatch.setenv("PLAIT_DB_URL", url)
        monkeypatch.setenv("PLAIT_WORKERS", "3")
        yield url


@pytest.fixture
def store(pg_url: str) -> Iterator[EventStore]:
    s = EventStore(pg_url)
    yield s
    s.close()


@pytest.fixture
def engines() -> Iterator[dict[str, Run]]:
    """``plait engine`` processes by name; every one still running is killed afterwards."""
    started: dict[str, Run] = {}
    yield started
    for run in started.values():
        run.kill()


def start_engine(engines: dict[str, Run], name: str, concurrency: int = 4) -> Run:
    run = cli("engine", "--lease-seconds", str(LEASE), "--concurrency", str(concurrency),
              env={"PLAIT_TEST_ENGINE": name})
    engines[name] = run
    wait_for(lambda: "serving" in run.output(), f"engine {name} to start", run=run)
    return run


def phases(store: EventStore, ids: list[str]) -> dict[str, str]:
    return {xid: store.execution(xid)["phase"] for xid in ids}


def all_succeeded_or_one_ran_twice(store: EventStore, ids: list[str], folder: Path, expect: int = 1) -> bool:
    """Wait condition: true once every execution succeeded, or at once if some execution's task
    ran more often than ``expect`` (a double run should fail the test now, not at a timeout)."""
    twice = [m.name for m in folder.iterdir() if len(m.read_text().split()) > expect]
    return bool(twice) or set(phases(store, ids).values()) == {"succeeded"}


def test_two_engines_run_each_queued_execution_exactly_once(store: EventStore, engines: dict[str, Run],
                                                            tmp_path: Path):
    folder = tmp_path / "marks"
    folder.mkdir()
    for name in ("A", "B"):
        start_engine(engines, name)
    by_cli = cli("launch", f"{__file__}:marked", "--tag", "t0", "--folder", str(folder), "--seconds", "1.5")
    ids = [by_cli.wait(60).strip().splitlines()[-1]]
    ids += [launch(marked, {"tag": f"t{i}", "folder": str(folder), "seconds": 1.5}, LaunchOptions(), store)
            for i in range(1, 10)]
    assert store.execution(ids[0])["phase"] in ("queued", "running", "succeeded")

    wait_for(lambda: all_succeeded_or_one_ran_twice(store, ids, folder), "every execution to succeed", timeout=90)
    runs = {m.name: m.read_text().split() for m in sorted(folder.iterdir())}
    assert {tag: r for tag, r in runs.items() if len(r) > 1} == {}, "executions that ran more than once"
    assert set(phases(store, ids).values()) == {"succeeded"} and len(runs) == 10
    assert {r[0] for r in runs.values()} == {"A", "B"}, f"one engine ran everything, nothing was contended: {runs}"
    assert ExecutionQueue(store).rows() == []
    for xid in ids:
        assert [e.phase for e in store.events(xid) if e.kind == "execution"] == ["running", "succeeded"]


def test_a_killed_engines_executions_are_resumed_by_another_only_after_its_lease_expires(
        store: EventStore, engines: dict[str, Run], tmp_path: Path):
    folder = tmp_path / "marks"
    folder.mkdir()
    ids = [launch(marked, {"tag": f"t{i}", "folder": str(folder), "seconds": 2.0}, LaunchOptions(), store)
           for i in range(6)]
    queue = ExecutionQueue(store)
    a = start_engine(engines, "A", concurrency=3)

    def a_started() -> list[str]:
        held = [r["execution_id"] for r in queue.rows() if r["owner"]]
        running = [x for x in held if any(e.kind == "attempt" and e.phase == "running" for e in store.events(x))
                   and (folder / f"t{ids.index(x)}").exists()]  # its task has started in A's worker
        return running if len(running) == 3 else []

    wait_for(a_started, "engine A to claim and start three executions", run=a)
    a.kill()  # kill -9: no renewal, no ending, nothing more is written
    killed = time.time()
    held = {r["execution_id"]: r["lease_expires"] for r in queue.rows() if r["owner"]}
    assert len(held) == 3
    a_events = {x: list(store.events(x)) for x in held}

    start_engine(engines, "B")
    wait_for(lambda: all_succeeded_or_one_ran_twice(store, ids, folder, expect=2), "engine B to finish everything",
             timeout=90)
    assert queue.rows() == []
    for xid, expires in held.items():
        events = list(store.events(xid))
        by_b = [e for e in events if e.ts > killed]
        assert by_b, f"{xid}: B recorded nothing"
        assert min(e.ts for e in by_b) >= expires, (
            f"{xid}: B started on it {expires - min(e.ts for e in by_b):.2f}s before A's lease expired")
        assert {e.run for e in by_b} == {1} and {e.run for e in a_events[xid]} == {0}, "B did not resume A's run"
        assert [e.phase for e in events if e.kind == "execution"] == ["running", "running", "succeeded"]
    for i, xid in enumerate(ids):
        lines = (folder / f"t{i}").read_text().split()
        if xid in held:
            assert lines == ["A", "B"], f"{xid} ran {lines}"
        else:
            assert lines == ["B"], f"{xid}, which A never claimed, ran {lines}"


def test_concurrent_claimers_on_postgresql_never_take_the_same_row(store: EventStore, pg_url: str):
    import threading

    rows, claimers = 300, 6
    queue = ExecutionQueue(store)
    for i in range(rows):
        queue.enqueue(f"x{i:04d}", marked.spec, {}, {})
    start = threading.Barrier(claimers)
    got: list[list[str]] = [[] for _ in range(claimers)]

    def claimer(n: int) -> None:
        own = EventStore(pg_url)  # connections of its own, as another engine has
        start.wait()
        try:
            while batch := ExecutionQueue(own).claim(f"engine-{n}", lease_s=60, limit=3):
                got[n].extend(c.execution_id for c in batch)
        finally:
            own.close()

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(claimers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    taken = [x for g in got for x in g]
    assert len(taken) - len(set(taken)) == 0, "rows were claimed twice"
    assert sorted(taken) == [f"x{i:04d}" for i in range(rows)]
    assert sum(1 for g in got if g) > 1, "only one claimer took anything: the test raced nobody"
