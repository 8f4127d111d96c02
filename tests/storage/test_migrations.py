"""The store's schema comes from Alembic migrations, run when an EventStore opens a database.

On SQLite and on a real PostgreSQL server: upgrade, downgrade and upgrade again, with the
schema after each upgrade equal to the SQLAlchemy tables plait uses (Alembic's own
comparison); an old database made by ``create_all`` before migrations keeps its rows; opening
a database already at head costs one query and no Alembic import; several processes opening
one fresh PostgreSQL database at once all succeed.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import plait.storage.access  # noqa: F401  (its tables, on the shared metadata)
import plait.storage.entities  # noqa: F401  (its table, on the shared metadata)
import plait.storage.lineage  # noqa: F401  (its tables, on the shared metadata)
import plait.storage.queue  # noqa: F401  (its table, on the shared metadata)
import plait.storage.schedules  # noqa: F401  (its tables, on the shared metadata)
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from plait.storage import migrations
from plait.storage.events import EventStore, metadata
from plait.storage.migrations import SchemaError
from postgres_db import fresh_database

PLAIT_TABLES = {"executions", "specs", "events", "cache", "entities", "queue", "projects", "users", "api_keys",
                "members", "execution_tags", "active_launch_plans", "leases", "schedule_state",
                "lineage_events", "lineage_datasets", "lineage_outbox"}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'plait.db'}"
    else:
        with fresh_database() as pg_url:
            yield pg_url


def differences(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


def tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_upgrade_downgrade_upgrade_matches_the_tables_plait_uses(url: str):
    engine = sa.create_engine(url)
    try:
        migrations.upgrade(engine, fast=False)  # every migration, as an existing store takes them
        assert tables(engine) == PLAIT_TABLES | {"alembic_version"}
        assert differences(engine) == []
        migrations.downgrade(engine)
        assert tables(engine) - {"alembic_version"} == set(), "downgrade base left plait tables"
        migrations.upgrade(engine, fast=False)
        assert differences(engine) == []
        assert migrations.current_revision(engine) == migrations.HEAD
    finally:
        engine.dispose()


def schema(engine: sa.Engine) -> dict[str, object]:
    inspector = sa.inspect(engine)
    return {name: (sorted((c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(name)),
                   sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(name)),
                   inspector.get_pk_constraint(name)["constrained_columns"])
            for name in sorted(inspector.get_table_names())}


def test_a_fresh_store_made_without_alembic_is_the_schema_the_migrations_make(url: str, tmp_path: Path):
    """A new store is created from the tables and stamped at head (no Alembic import, a tenth
    of a second saved on every new .plait): the same tables, columns and indexes as migrating,
    and the migrations run down from it."""
    if url.startswith("sqlite"):
        probe = ("import sys; from plait.storage.events import EventStore; EventStore(sys.argv[1]).close(); "
                 "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))")
        out = subprocess.run([sys.executable, "-c", probe, url], capture_output=True, text=True, check=True).stdout
        assert out.strip() == "[]", "creating a fresh store imported Alembic"
    fast = sa.create_engine(url)
    migrated = sa.create_engine(f"sqlite:///{tmp_path / 'migrated.db'}") if url.startswith("sqlite") else None
    try:
        migrations.upgrade(fast)
        assert migrations.current_revision(fast) == migrations.HEAD
        assert differences(fast) == []
        if migrated is not None:
            migrations.upgrade(migrated, fast=False)
            assert schema(fast) == schema(migrated)
        migrations.downgrade(fast)
        assert tables(fast) - {"alembic_version"} == set(), "the migrations could not run down from it"
    finally:
        fast.dispose()
        if migrated is not None:
            migrated.dispose()


def test_revisions_named_in_code_are_alembics_chain():
    # ensure_schema decides "at head" without Alembic, from these constants: they must not drift.
    script = ScriptDirectory.from_config(migrations.alembic_config())
    chain = [rev.revision for rev in reversed(list(script.walk_revisions()))]
    assert tuple(chain) == migrations.REVISIONS
    assert script.get_current_head() == migrations.HEAD


OLD_SCHEMA = [  # what metadata.create_all made before plait had migrations (revision 0001)
    """CREATE TABLE executions (id VARCHAR(64) NOT NULL, workflow VARCHAR(512) NOT NULL,
       version VARCHAR(64) NOT NULL, project VARCHAR(128) NOT NULL, domain VARCHAR(128) NOT NULL,
       created FLOAT NOT NULL, phase VARCHAR(32) NOT NULL, updated FLOAT NOT NULL, PRIMARY KEY (id))""",
    """CREATE TABLE specs (version VARCHAR(64) NOT NULL, name VARCHAR(512) NOT NULL, body TEXT NOT NULL,
       PRIMARY KEY (version))""",
    """CREATE TABLE events (seq INTEGER NOT NULL, execution_id VARCHAR(64) NOT NULL, run INTEGER NOT NULL,
       kind VARCHAR(16) NOT NULL, entity VARCHAR(512) NOT NULL, phase VARCHAR(32) NOT NULL, ts FLOAT NOT NULL,
       data TEXT NOT NULL, PRIMARY KEY (seq), CONSTRAINT uq_event_once UNIQUE (execution_id, run, entity, phase))""",
    """CREATE TABLE cache ("key" VARCHAR(64) NOT NULL, task VARCHAR(512) NOT NULL, outputs TEXT NOT NULL,
       execution_id VARCHAR(64) NOT NULL, created FLOAT NOT NULL, PRIMARY KEY ("key"))""",
]


def test_a_store_made_before_migrations_is_stamped_and_upgraded_keeping_its_rows(tmp_path: Path):
    db = tmp_path / "plait.db"
    old = sa.create_engine(f"sqlite:///{db}")
    with old.begin() as conn:
        for statement in OLD_SCHEMA:
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql("INSERT INTO executions VALUES ('x1', 'wf', 'v1', 'p', 'd', 1.0, 'succeeded', 2.0)")
        conn.exec_driver_sql("INSERT INTO events (execution_id, run, kind, entity, phase, ts, data) "
                             "VALUES ('x1', 0, 'execution', '', 'succeeded', 2.0, '{}')")
    old.dispose()
    store = EventStore(f"sqlite:///{db}")
    try:
        assert migrations.current_revision(store.engine) == migrations.HEAD
        assert differences(store.engine) == []
        assert store.execution("x1")["phase"] == "succeeded"
        assert [e.phase for e in store.events("x1")] == ["succeeded"]
    finally:
        store.close()


def test_opening_a_store_at_head_is_one_query(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'plait.db'}"
    EventStore(url).close()
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    sa.event.listen(sa.Engine, "before_cursor_execute", record)
    try:
        EventStore(url).close()
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", record)
    assert statements == ["SELECT version_num FROM alembic_version"]


def test_opening_a_store_at_head_does_not_import_alembic(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'plait.db'}"
    EventStore(url).close()
    probe = ("import sys; from plait.storage.events import EventStore; EventStore(sys.argv[1]).close(); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))")
    out = subprocess.run([sys.executable, "-c", probe, url], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_store_written_by_a_newer_plait_is_refused_by_name(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'plait.db'}"
    EventStore(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    with pytest.raises(SchemaError, match=r"revision '9999'.*newer plait"):
        EventStore(url)


ROUNDS = 1
OPENER = """
import sys
import alembic.command, plait.storage.migrations.versions  # imported before the start: a tight race
from plait.storage.events import EventStore
print("ready", flush=True)
sys.stdin.readline()
EventStore(sys.argv[1]).close()
"""


def open_at_once(url: str, processes: int = 4) -> list[str]:
    """Open an EventStore on ``url`` in ``processes`` processes released together; their errors."""
    children = [subprocess.Popen([sys.executable, "-c", OPENER, url], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(processes)]
    for child in children:  # every process started and waiting
        assert child.stdout is not None and child.stdout.readline() == "ready\n", child.communicate()
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    errors = []
    for child in children:
        _, err = child.communicate(timeout=120)
        if child.returncode != 0:
            errors.append(next(line for line in reversed(err.strip().splitlines()) if not line.startswith("(")))
    return errors


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_processes_opening_one_fresh_database_at_once_all_succeed(dialect: str, tmp_path: Path):
    # Four processes (as four `plait run`s) open an empty database together.
    # Without the lock around the upgrade (pg_advisory_xact_lock; BEGIN IMMEDIATE on SQLite)
    # they race to create the same tables.
    for attempt in range(ROUNDS):
        fresh = fresh_database() if dialect == "postgresql" else nullcontext(f"sqlite:///{tmp_path}/{attempt}.db")
        with fresh as url:
            errors = open_at_once(url)
            assert not errors, f"{len(errors)} of 4 failed: {errors[0]}"
            engine = sa.create_engine(url)
            assert migrations.current_revision(engine) == migrations.HEAD
            assert differences(engine) == []
            engine.dispose()
