"""The execution queue on SQLite: queued executions, lease claims, renewal, expiry, finishing,
and an engine host that runs what it claims concurrently on one event loop.

Lease expiry is driven by a clock the test passes in, never by sleeping past a lease.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path

import plait
import pytest
from plait.engine import build_engine
from plait.engine.host import EngineHost
from plait.model.settings import Settings
from plait.service.launch import LaunchOptions, launch
from plait.storage.events import EventStore
from plait.storage.queue import ExecutionQueue


@plait.task
def mark(tag: str, folder: str, seconds: float) -> str:
    """Append a line to ``folder/tag`` (so a second run of the same execution shows), then sleep."""
    with open(Path(folder) / tag, "a") as fh:
        fh.write("ran\n")
    time.sleep(seconds)
    return tag


@plait.workflow
def marked(tag: str, folder: str, seconds: float = 0.0) -> str:
    return mark(tag=tag, folder=folder, seconds=seconds)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(plait_home: Path):
    s = EventStore(Settings.from_env().db_url)
    yield s
    s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def q(store: EventStore, clock: Clock) -> ExecutionQueue:
    return ExecutionQueue(store, clock=clock)


def enqueue(q: ExecutionQueue, xid: str, **options: object) -> str:
    q.enqueue(xid, marked.spec, {"tag": xid, "folder": "/nowhere", "seconds": 0.0}, dict(options), "acme", "prod")
    return xid


def test_enqueue_creates_a_queued_execution_with_its_spec_inputs_and_options(q: ExecutionQueue, store: EventStore):
    enqueue(q, "x1", inline=True, priority=3)
    row = store.execution("x1")
    assert (row["phase"], row["project"], row["domain"], row["workflow"]) == ("queued", "acme", "prod", marked.spec.name)
    assert store.spec(row["version"]).version == marked.spec.version
    [claim] = q.claim("engine-a", lease_s=10)
    assert claim.execution_id == "x1"
    assert claim.inputs == {"tag": "x1", "folder": "/nowhere", "seconds": 0.0}
    assert claim.options == {"inline": True, "priority": 3}


def test_claims_take_the_oldest_rows_first_up_to_the_limit(q: ExecutionQueue, clock: Clock):
    for i in range(5):
        clock.now += 1
        enqueue(q, f"x{i}")
    assert [c.execution_id for c in q.claim("a", 10, limit=2)] == ["x0", "x1"]
    assert [c.execution_id for c in q.claim("b", 10, limit=10)] == ["x2", "x3", "x4"]
    assert q.claim("c", 10, limit=10) == []


def test_a_held_claim_is_not_claimed_again_until_its_lease_expires(q: ExecutionQueue, clock: Clock):
    enqueue(q, "x")
    assert [c.execution_id for c in q.claim("a", lease_s=10)] == ["x"]
    clock.now += 9.9
    assert q.claim("b", lease_s=10) == []
    clock.now += 0.2  # past a's lease: a is presumed dead
    assert [c.execution_id for c in q.claim("b", lease_s=10)] == ["x"]
    assert [(r["owner"], r["lease_expires"]) for r in q.rows()] == [("b", clock.now + 10)]


def test_renewing_extends_only_the_owners_leases_and_reports_the_ones_it_lost(q: ExecutionQueue, clock: Clock):
    enqueue(q, "x")
    enqueue(q, "y")
    q.claim("a", lease_s=10, limit=2)
    clock.now += 8
    assert q.renew("a", ["x", "y"], lease_s=10) == {"x", "y"}
    clock.now += 8  # 16 s after the claim, but 8 s after the renewal: still a's
    assert q.claim("b", lease_s=10) == []
    assert q.renew("b", ["x", "y"], lease_s=10) == set(), "renewing someone else's claim"
    clock.now += 11  # a stalled past its renewed lease; b takes the oldest over
    [taken] = q.claim("b", lease_s=10)
    assert taken.execution_id == "x"
    assert q.renew("a", ["x", "y"], lease_s=10) == {"y"}, "a must learn it lost x"


def test_finishing_removes_the_row_only_for_its_owner(q: ExecutionQueue, clock: Clock):
    enqueue(q, "x")
    q.claim("a", lease_s=10)
    assert q.finish("b", "x") is False
    assert [r["execution_id"] for r in q.rows()] == ["x"]
    assert q.finish("a", "x") is True
    assert q.rows() == []
    clock.now += 100
    assert q.claim("b", lease_s=10) == [], "a finished execution came back"


def test_concurrent_claimers_never_take_the_same_row(store: EventStore):
    rows, claimers = 300, 6
    q = ExecutionQueue(store)
    for i in range(rows):
        enqueue(q, f"x{i:04d}")
    start, done = threading.Barrier(claimers), threading.Barrier(claimers)
    got: list[list[str]] = [[] for _ in range(claimers)]

    def claimer(n: int) -> None:
        own = EventStore(store.url)  # a connection pool of its own, as another engine has
        mine = ExecutionQueue(own)
        seen = 0
        try:
            while True:
                start.wait()  # each round, every claimer claims at the same moment: they race
                got[n].extend(c.execution_id for c in mine.claim(f"engine-{n}", lease_s=60, limit=3))
                done.wait()  # all see the same total, so all stop after the same round
                total = sum(len(g) for g in got)
                if total == seen:
                    return
                seen = total
        finally:
            own.close()

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(claimers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    taken = [x for g in got for x in g]
    assert sorted(taken) == [f"x{i:04d}" for i in range(rows)], (
        f"{len(taken) - len(set(taken))} rows were claimed twice")
    assert sum(1 for g in got if g) > 1, "only one claimer took anything: the test raced nobody"


# ---------------------------------------------------------------------------------------
# The engine host
# ---------------------------------------------------------------------------------------


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PLAIT_WORKERS", "3")
    e = build_engine()
    yield e
    e.close()


def _launch(engine, tmp_path: Path, tag: str, seconds: float) -> str:
    folder = tmp_path / "marks"
    folder.mkdir(exist_ok=True)
    return launch(marked, {"tag": tag, "folder": str(folder), "seconds": seconds}, LaunchOptions(), engine.store,
                  blobs=engine.blobs)


def test_a_host_runs_its_claimed_executions_at_the_same_time_on_one_loop(engine, tmp_path: Path):
    ids = [_launch(engine, tmp_path, f"t{i}", 1.0) for i in range(3)]
    host = EngineHost(engine, owner="host-a", lease_s=5, concurrency=3)
    asyncio.run(host.serve(stop_when_idle=True))
    spans = []
    for xid in ids:
        assert engine.store.execution(xid)["phase"] == "succeeded"
        ends = {e.phase: e.ts for e in engine.store.events(xid) if e.kind == "execution"}
        spans.append((ends["running"], ends["succeeded"]))
    assert max(s for s, _ in spans) < min(e for _, e in spans), f"they ran one after another: {spans}"
    assert ExecutionQueue(engine.store).rows() == [], "finished executions stayed queued"
    assert [(tmp_path / "marks" / f"t{i}").read_text() for i in range(3)] == ["ran\n"] * 3


def test_a_host_that_lost_a_claim_stops_that_execution_without_recording_anything(engine, tmp_path: Path):
    xid = _launch(engine, tmp_path, "long", 30.0)
    host = EngineHost(engine, owner="host-a", lease_s=0.6, concurrency=2, poll_s=0.05)
    thief = ExecutionQueue(engine.store, clock=lambda: time.time() + 3600)  # sees every lease expired

    async def scenario() -> None:
        serving = asyncio.create_task(host.serve(stop_when_idle=True))
        while not (tmp_path / "marks" / "long").exists():  # the task has started in a worker
            await asyncio.sleep(0.02)
        assert [c.execution_id for c in thief.claim("host-b", lease_s=3600)] == [xid]
        await asyncio.wait_for(serving, 10)

    asyncio.run(scenario())
    assert host.results == {xid: None}, "the host went on running an execution another engine owns"
    events = list(engine.store.events(xid))
    assert [e.phase for e in events if e.kind == "execution"] == ["running"]
    assert not [e for e in events if e.phase in ("aborted", "failed")], "it recorded an ending it does not own"
    assert engine.store.execution(xid)["phase"] == "running"
    assert [(r["execution_id"], r["owner"]) for r in ExecutionQueue(engine.store).rows()] == [(xid, "host-b")]


def test_a_claimed_execution_runs_as_the_tenant_it_was_launched_for(engine, tmp_path: Path):
    folder = tmp_path / "marks"
    folder.mkdir()
    xid = launch(marked, {"tag": "t", "folder": str(folder)}, LaunchOptions(project="pricing", domain="prod"),
                 engine.store, blobs=engine.blobs)
    asyncio.run(EngineHost(engine, owner="host-a", lease_s=5).serve(stop_when_idle=True))
    started = next(e for e in engine.store.events(xid) if e.kind == "execution")
    assert (started.data["project"], started.data["domain"]) == ("pricing", "prod")


def test_plait_run_creates_its_execution_claimed_by_itself_and_removes_it_when_done(engine, tmp_path: Path):
    import engine_process

    folder = tmp_path / "marks"
    folder.mkdir()
    run = engine_process.Run("run", f"{__file__}:marked", "--tag", "cli", "--folder", str(folder), "--seconds", "30")
    try:
        queue = ExecutionQueue(engine.store)
        deadline = time.monotonic() + 60
        while not (folder / "cli").exists():
            assert run.returncode is None and time.monotonic() < deadline, run.output()
            time.sleep(0.05)
        (row,) = queue.rows()
        assert row["owner"] and row["lease_expires"] > time.time(), "plait run did not claim its execution"
        assert queue.claim("another-engine", lease_s=30) == [], "another engine could take it while it runs"
        run.signal(signal.SIGINT)
        run.wait()
        assert queue.rows() == [], "an execution that ended stayed queued"
    finally:
        run.kill()


def test_an_engine_resumes_a_plait_run_that_was_killed_once_its_claim_expires(engine, tmp_path: Path):
    import engine_process

    folder = tmp_path / "marks"
    folder.mkdir()
    run = engine_process.Run("run", f"{__file__}:marked", "--tag", "cli", "--folder", str(folder), "--seconds", "2",
                             "--lease-seconds", "2")
    try:
        deadline = time.monotonic() + 60
        while not (folder / "cli").exists():
            assert run.returncode is None and time.monotonic() < deadline, run.output()
            time.sleep(0.05)
        run.kill()  # kill -9: the claim stays behind, unrenewed
        (row,) = ExecutionQueue(engine.store).rows()
        killed_at = time.time()
    finally:
        run.kill()
    host = EngineHost(engine, owner="rescuer", lease_s=5, poll_s=0.1)
    asyncio.run(asyncio.wait_for(_serve_until_done(host, row), 60))
    xid = row["execution_id"]
    assert engine.store.execution(xid)["phase"] == "succeeded"
    resumed = [e for e in engine.store.events(xid) if e.kind == "execution" and e.phase == "running" and e.run == 1]
    assert resumed and resumed[0].ts >= row["lease_expires"] - 0.01, "resumed before the dead run's claim expired"
    assert resumed[0].ts >= killed_at
    assert ExecutionQueue(engine.store).rows() == []


async def _serve_until_done(host: EngineHost, row: dict) -> None:
    """Serve until the killed run's execution ended (its claim only becomes claimable on expiry)."""
    serving = asyncio.create_task(host.serve())
    try:
        while host.results.get(row["execution_id"]) is None:
            await asyncio.sleep(0.1)
    finally:
        host.stop()
        await serving


def test_resume_refuses_an_execution_a_live_engine_holds(engine, tmp_path: Path):
    import engine_process

    folder = tmp_path / "marks"
    folder.mkdir()
    xid = launch(marked, {"tag": "held", "folder": str(folder)}, LaunchOptions(), engine.store, blobs=engine.blobs)
    assert [c.execution_id for c in ExecutionQueue(engine.store).claim("engine-elsewhere", lease_s=600)] == [xid]
    refused = engine_process.resume(xid)
    assert refused.returncode != 0, refused.stdout
    assert f"execution {xid} is being run by engine engine-elsewhere" in refused.stdout
    assert "Traceback" not in refused.stdout
    assert not (folder / "held").exists(), "it ran beside the engine that holds it"


def test_resume_takes_over_at_once_from_an_engine_on_this_machine_that_has_died(engine, tmp_path: Path):
    import socket
    import subprocess
    import sys

    import engine_process

    folder = tmp_path / "marks"
    folder.mkdir()
    xid = launch(marked, {"tag": "orphan", "folder": str(folder)}, LaunchOptions(), engine.store, blobs=engine.blobs)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = f"{socket.gethostname()}:{gone.stdout.strip()}:abc123"
    queue = ExecutionQueue(engine.store)
    assert [c.execution_id for c in queue.claim(dead, lease_s=600)] == [xid]  # its lease has 10 minutes left
    resumed = engine_process.resume(xid)
    assert resumed.returncode == 0, resumed.stdout
    assert (folder / "orphan").read_text() == "ran\n"
    assert engine.store.execution(xid)["phase"] == "succeeded"
    assert queue.rows() == [], "the resume's claim stayed behind"
