"""The store's schema, created and changed by Alembic migrations (``versions/``).

:func:`ensure_schema` is what :class:`~plait.storage.events.EventStore` calls on open. When
the database is already at :data:`HEAD` it costs one query of ``alembic_version`` and never
imports Alembic (whose import alone takes a quarter of a second on every ``plait run``).
Otherwise it upgrades under a lock, so that several processes opening one fresh database at
once do not race: ``pg_advisory_xact_lock`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite, with
the whole upgrade in that one transaction (both databases have transactional DDL). A database
made by plait before migrations (the tables, but no ``alembic_version``) is stamped as
revision ``0001``, which is exactly that schema, and then upgraded.

For developers: ``alembic -c core/plait/storage/migrations/alembic.ini -x url=sqlite:///x.db
upgrade head`` (or ``revision --autogenerate -m ...``) runs Alembic on this folder directly.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from plait.model.errors import PlaitError

REVISIONS = ("0001", "0002", "0003", "0004", "0005")
"""Every revision in ``versions/``, oldest first; a test checks it against Alembic's own view."""
HEAD = REVISIONS[-1]
LOCATION = Path(__file__).parent
LOCK_KEY = 0x706C616974  # "plait": the PostgreSQL advisory lock held while upgrading
_ALEMBIC = threading.Lock()
"""Alembic's ``context`` and ``op`` are module globals: one migration at a time per process."""


class SchemaError(PlaitError):
    """The database's schema is newer than this plait, or cannot be brought to head."""


def current_revision(engine: Engine) -> str | None:
    """The revision recorded in ``alembic_version``, or None without one (one query)."""
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    except sa.exc.DBAPIError:  # no such table: a fresh database, or one from before migrations
        return None


def ensure_schema(engine: Engine) -> None:
    """Bring the database behind ``engine`` to :data:`HEAD`; one query when it is there."""
    revision = current_revision(engine)
    if revision == HEAD:
        return
    upgrade(engine)


def upgrade(engine: Engine, target: str = "head", *, fast: bool = True) -> None:
    """Run the migrations up to ``target`` under the database's lock.

    A fresh database going to head is created from the tables' definitions and stamped,
    without importing Alembic (a tenth of a second on every new ``.plait``); a test proves the
    result identical to the migrations'. ``fast=False`` runs every migration instead.
    """
    with _ALEMBIC, _locked(engine) as conn:
        revision = _revision_in(conn)
        if revision is not None and revision not in REVISIONS:
            raise _too_new(engine, revision)
        if fast and revision is None and target in ("head", HEAD) and not sa.inspect(conn).has_table("executions"):
            _create_at_head(conn)
            return
        from alembic import command

        config = alembic_config(conn)
        if revision is None and sa.inspect(conn).has_table("executions"):
            command.stamp(config, "0001")  # made by create_all before plait had migrations
        command.upgrade(config, target)


def _create_at_head(conn: Connection) -> None:
    from plait.storage import access, entities, lineage, queue, schedules  # noqa: F401  (importing them adds their tables)
    from plait.storage.events import metadata

    metadata.create_all(conn)
    conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                         "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))")
    conn.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES (:head)"), {"head": HEAD})


def downgrade(engine: Engine, target: str = "base") -> None:
    """Run the migrations down to ``target`` (``base`` drops every plait table)."""
    from alembic import command

    with _ALEMBIC, _locked(engine) as conn:
        command.downgrade(alembic_config(conn), target)


def alembic_config(connection: Connection | None = None) -> Any:
    """An Alembic ``Config`` for this folder, running its migrations on ``connection``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(LOCATION))
    config.attributes["connection"] = connection
    return config


class _locked:
    """A connection in a transaction that holds the database's migration lock."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.own: Engine | None = None

    def __enter__(self) -> Connection:
        engine = self.engine
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            # pysqlite starts transactions late and never for DDL: take the write lock at BEGIN
            # on an engine of our own, so the whole upgrade is one transaction.
            self.own = engine = sa.create_engine(engine.url, poolclass=sa.pool.NullPool)
            sa.event.listen(engine, "connect", _sqlite_manual_transactions)
            sa.event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        self.context = engine.begin()
        conn = self.context.__enter__()
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        return conn

    def __exit__(self, *exc: Any) -> None:
        try:
            self.context.__exit__(*exc)
        finally:
            if self.own is not None:
                self.own.dispose()


def _sqlite_manual_transactions(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None
    dbapi_conn.execute("PRAGMA busy_timeout=30000")


def _revision_in(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def _too_new(engine: Engine, revision: str) -> SchemaError:
    return SchemaError(
        f"the store {engine.url.render_as_string(hide_password=True)} is at schema revision "
        f"{revision!r}, which this plait does not know (it knows up to {HEAD!r}): it was written "
        f"by a newer plait; upgrade plait to use it")
