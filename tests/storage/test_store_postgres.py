"""The event store on PostgreSQL: ``PLAIT_DB_URL`` pointing at a real server.

The README promises "any SQLAlchemy URL; SQLite and PostgreSQL". These tests run real
workflows, through ``plait.run`` and through the ``plait`` command line, against a real
PostgreSQL server (127.0.0.1:5432, user postgres without a password, as `make services`
sets it up), in a database of their own that they create and drop. Every test reads the rows
back with psycopg directly, so a store that quietly fell back to SQLite would fail them.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flows
import plait
import pytest
import sqlalchemy as sa
from plait.model.status import Phase
from plait.storage.events import Event, EventStore
from postgres_db import fresh_database

ROOT = Path(__file__).resolve().parents[2]
FLOWS = str(ROOT / "tests" / "flows.py")

@dataclass(frozen=True)
class Database:
    """A database of this test session's own on the PostgreSQL server."""

    name: str
    url: str
    """The SQLAlchemy URL plait is given (``PLAIT_DB_URL``)."""
    dsn: str
    """The same database for psycopg, to read what plait wrote without plait."""

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.dsn) as conn:
            return list(conn.execute(query, params).fetchall())


@pytest.fixture(scope="module")
def database() -> Iterator[Database]:
    """A fresh database for this module, dropped at its end."""
    with fresh_database() as url:
        dsn = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        yield Database(sa.engine.make_url(url).database or "", url, dsn)


@pytest.fixture
def pg(database: Database, plait_home: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    """``PLAIT_DB_URL`` points at the test database, as a user would set it."""
    monkeypatch.setenv("PLAIT_DB_URL", database.url)
    return database


@pytest.fixture
def no_sqlite_store(plait_home: Path) -> Iterator[None]:
    """Afterwards, assert that plait wrote no SQLite store under its home."""
    yield
    assert not list(plait_home.rglob("*.db")), "plait fell back to a SQLite store"


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``plait ARGS`` in a subprocess that inherits the test's environment (PLAIT_DB_URL)."""
    return subprocess.run([sys.executable, "-m", "plait.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def phases(db: Database, execution_id: str, kind: str, entity: str) -> list[str]:
    return [r[0] for r in db.rows("SELECT phase FROM events WHERE execution_id = %s AND kind = %s AND entity = %s "
                                  "ORDER BY seq", execution_id, kind, entity)]


# ---------------------------------------------------------------------------------------
# Workflows with PLAIT_DB_URL on PostgreSQL
# ---------------------------------------------------------------------------------------


def test_a_run_records_its_execution_spec_and_events_in_postgresql(pg: Database, no_sqlite_store: None):
    execution = plait.run(flows.arithmetic, {"a": 3, "b": 4})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"o0": 14}
    xid = execution.execution_id
    assert pg.rows("SELECT workflow, phase, project, domain FROM executions WHERE id = %s", xid) == [
        ("flows.arithmetic", "succeeded", "default", "development")]
    [(version,)] = pg.rows("SELECT version FROM executions WHERE id = %s", xid)
    assert pg.rows("SELECT name FROM specs WHERE version = %s", version) == [("flows.arithmetic",)]
    assert phases(pg, xid, "execution", "") == ["running", "succeeded"]
    assert phases(pg, xid, "node", "add") == ["running", "succeeded"]
    assert phases(pg, xid, "node", "double") == ["running", "succeeded"]
    [(data,)] = pg.rows("SELECT data FROM events WHERE execution_id = %s AND kind = 'execution' "
                        "AND phase = 'succeeded'", xid)
    assert '"o0"' in data and "14" in data


def test_the_cli_runs_lists_shows_and_prints_events_from_postgresql(pg: Database, no_sqlite_store: None):
    run = cli("run", f"{FLOWS}:noisy_wf", "--x", "9")
    assert run.returncode == 0, run.stdout + run.stderr
    match = re.search(r"execution (\d{8}-\d{6}-[0-9a-f]{6})", run.stdout)
    assert match, run.stdout
    xid = match.group(1)
    assert pg.rows("SELECT phase FROM executions WHERE id = %s", xid) == [("succeeded",)]

    listed = cli("executions", "list")
    assert listed.returncode == 0, listed.stderr
    assert xid in listed.stdout and "flows.noisy_wf" in listed.stdout

    shown = cli("executions", "show", xid)
    assert shown.returncode == 0, shown.stderr
    assert "succeeded" in shown.stdout and "hello from stdout 9" in shown.stdout

    events = cli("executions", "events", xid)
    assert events.returncode == 0, events.stderr
    printed = [line.split()[3] for line in events.stdout.splitlines()]
    stored = [r[0] for r in pg.rows("SELECT phase FROM events WHERE execution_id = %s ORDER BY seq", xid)]
    assert printed == stored and stored[0] == "running" and stored[-1] == "succeeded"


def test_a_failed_execution_resumes_from_its_events_in_postgresql(
        pg: Database, no_sqlite_store: None, tmp_path: Path, fast_retries: Callable[..., Any]):
    marker = tmp_path / "calls"
    failed = plait.run(flows.flaky_wf, {"marker": str(marker), "fail_times": 3}, options=fast_retries())
    assert failed.phase == Phase.FAILED
    xid = failed.execution_id
    assert pg.rows("SELECT phase FROM executions WHERE id = %s", xid) == [("failed",)]

    resumed = cli("executions", "resume", xid)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert '"o0": 4' in resumed.stdout
    assert pg.rows("SELECT phase FROM executions WHERE id = %s", xid) == [("succeeded",)]
    attempts = pg.rows("SELECT run, entity FROM events WHERE execution_id = %s AND kind = 'attempt' "
                       "AND phase IN ('failed', 'succeeded') ORDER BY seq", xid)
    assert attempts == [(0, "flaky/1"), (0, "flaky/2"), (0, "flaky/3"), (1, "flaky/4")]
    assert len(marker.read_text().splitlines()) == 4


def test_a_cached_result_is_stored_in_postgresql_and_used_by_the_next_run(
        pg: Database, no_sqlite_store: None, tmp_path: Path):
    marker = tmp_path / "calls"
    x = int(uuid.uuid4().int % 10_000)  # a key of this test's own: the database outlives one test
    first = plait.run(flows.cached_wf, {"x": x, "marker": str(marker)})
    second = plait.run(flows.cached_wf, {"x": x, "marker": str(marker)})
    assert first.outputs == second.outputs == {"o0": x * x}
    assert len(marker.read_text().splitlines()) == 1, "the second run did not use the cached result"
    assert pg.rows("SELECT execution_id FROM cache WHERE task = 'flows.cached_square' AND execution_id IN (%s, %s)",
                   first.execution_id, second.execution_id) == [(first.execution_id,)]


# ---------------------------------------------------------------------------------------
# The store's dialect-specific statements, on both databases
# ---------------------------------------------------------------------------------------


@pytest.fixture(params=["postgresql", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'plait.db'}"
    db: Database = request.getfixturevalue("database")
    return db.url


def count_events(url: str, execution_id: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM events WHERE execution_id = :x"),
                                    {"x": execution_id}).scalar_one())
    finally:
        engine.dispose()


def test_an_event_appended_twice_is_recorded_once(store_url: str):
    store = EventStore(store_url)
    xid = f"twice-{uuid.uuid4().hex[:8]}"
    try:
        event = Event(xid, "node", "a", "running", {"n": 1}, 1.0)
        store.append(event)
        store.append(event)  # twice in one batch
        store.flush()
        store.append(event)  # and again in a later one, as an engine that restarted writes it
        store.append(Event(xid, "node", "a", "running", {"n": 1}, 1.0, run=1))  # a resume's own
        store.flush()
        assert count_events(store_url, xid) == 2
        assert [(e.phase, e.run) for e in store.events(xid)] == [("running", 0), ("running", 1)]
    finally:
        store.close()


def _at_once(stores: list[EventStore], work: Callable[[EventStore, int], None]) -> list[str]:
    """Run ``work`` in one thread per store, released together; return the errors raised."""
    barrier = threading.Barrier(len(stores))
    errors: list[str] = []

    def body(store: EventStore, i: int) -> None:
        barrier.wait(timeout=60)
        try:
            work(store, i)
        except Exception as exc:  # collected, so the test reports every one
            errors.append(f"{type(exc).__name__}: {exc}".splitlines()[0])

    threads = [threading.Thread(target=body, args=(s, i)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


def test_engines_that_cache_the_same_result_at_once_all_succeed(store_url: str):
    # Several engines (each with its own store, as in separate processes) finish the same
    # cached task at the same moment: the cache is an upsert, not delete-then-insert.
    stores = [EventStore(store_url) for _ in range(6)]
    prefix = uuid.uuid4().hex[:8]
    try:
        def work(store: EventStore, i: int) -> None:
            for n in range(40):
                store.put_cache(f"{prefix}-{n}", "flows.cached_square", {"o0": i}, f"engine-{i}")

        errors = _at_once(stores, work)
        assert not errors, f"{len(errors)} engines failed to cache a result: {errors[:3]}"
        for n in range(40):
            assert stores[0].cached(f"{prefix}-{n}") in [{"o0": i} for i in range(6)]
    finally:
        for s in stores:
            s.close()


def test_executions_of_one_workflow_created_at_once_all_start(store_url: str):
    # Two `plait run`s of one workflow started together store its spec once, and both run.
    stores = [EventStore(store_url) for _ in range(6)]
    try:
        for _ in range(10):
            spec = flows.arithmetic.spec.model_copy(update={"version": uuid.uuid4().hex[:16]})
            ids = [f"at-once-{uuid.uuid4().hex[:12]}" for _ in stores]
            errors = _at_once(stores, lambda store, i, ids=ids, spec=spec: store.create_execution(ids[i], spec, "p", "d"))
            assert not errors, f"{len(errors)} of {len(stores)} executions failed to start: {errors[:3]}"
            assert [stores[0].execution(x)["version"] for x in ids] == [spec.version] * len(ids)
            assert stores[0].spec(spec.version).name == spec.name
    finally:
        for s in stores:
            s.close()
