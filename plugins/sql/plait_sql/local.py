"""The local warehouse: BigQuery or Snowflake SQL on an embedded DuckDB database.

For offline work a query task can run with ``connection="local"`` (or ``PLAIT_OFFLINE=1``):
its SQL is translated from the vendor's dialect by sqlglot and runs on one DuckDB file,
``$PLAIT_HOME/warehouse.duckdb`` (or ``PLAIT_WAREHOUSE``), so tables one task writes are
there for the next. A table's catalog (project, database) is dropped and its schema
(dataset) created on first use. Queries run on threads of the engine's process; a query in
flight when the engine stops is lost, and the task's next attempt runs it again.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plait import PlaitError
from plait.sdk import Settings, default_workers

from plait_sql.template import Parameter


def offline() -> bool:
    """Whether ``PLAIT_OFFLINE`` asks every service task to run on its local stand-in."""
    return os.environ.get("PLAIT_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def warehouse_path() -> Path:
    configured = os.environ.get("PLAIT_WAREHOUSE")
    return Path(configured) if configured else Settings.from_env().home / "warehouse.duckdb"


@dataclass(frozen=True)
class Statement:
    """One statement translated for DuckDB: its text, the schemas it names, its parameters."""

    sql: str
    schemas: tuple[str, ...]
    parameters: frozenset[str]


@functools.lru_cache(maxsize=256)
def _translate(sql: str, dialect: str) -> tuple[Statement, ...]:
    import sqlglot
    from sqlglot import exp

    try:
        parsed = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except sqlglot.errors.ParseError as e:
        raise LocalQueryError(f"the query is not valid {dialect} SQL: {e}") from None
    if not parsed:
        raise LocalQueryError("the query is empty")
    statements = []
    for statement in parsed:
        tables = list(statement.find_all(exp.Table))
        for table in tables:
            table.set("catalog", None)
        statements.append(Statement(
            statement.sql(dialect="duckdb"), tuple(dict.fromkeys(t.db for t in tables if t.db)),
            frozenset(n.name for n in statement.find_all(exp.Placeholder, exp.Parameter))))
    return tuple(statements)


class LocalQueryError(Exception):
    """A query the local warehouse could not translate or run; the message says why."""


@dataclass
class _Job:
    future: Future[Any]
    cursor: Any
    cancelled: bool = False


class LocalWarehouse:
    """One DuckDB database shared by the local query tasks of this process."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or warehouse_path()
        self._connection: Any = None
        self._jobs: dict[str, _Job] = {}
        self._schemas: set[str] = set()
        self._lock = threading.Lock()
        self._threads = ThreadPoolExecutor(max_workers=max(2, default_workers()),
                                           thread_name_prefix="plait-warehouse")

    def connection(self) -> Any:
        with self._lock:
            if self._connection is None:
                import duckdb

                self.path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    self._connection = duckdb.connect(str(self.path))
                except duckdb.IOException as e:
                    raise PlaitError(f"cannot open the local warehouse {self.path}: {e}. Another process "
                                     "may hold it; set PLAIT_WAREHOUSE to another file") from None
            return self._connection

    @staticmethod
    def translate(sql: str, dialect: str) -> tuple[Statement, ...]:
        """``sql`` in ``dialect`` as DuckDB statements, each table's catalog dropped (the local
        file is the only one). Cached: a map runs one template many times."""
        return _translate(sql, dialect)

    def submit(self, key: str, sql: str, dialect: str, parameters: list[Parameter],
               frames: dict[str, Callable[[], Any]], destination: str | None,
               notify: Callable[[], None]) -> None:
        """Start the query as job ``key``; a second submit of the same key attaches to it."""
        statements = self.translate(sql, dialect)
        connection = self.connection()
        with self._lock:  # check and record at once: two submits of one key start one query
            if key in self._jobs:
                return
            job = self._jobs[key] = _Job(Future(), connection.cursor())
            job.future = self._threads.submit(self._run, job, statements, parameters, frames, destination)
        job.future.add_done_callback(lambda _: notify())

    def _schema(self, cursor: Any, name: str) -> None:
        # Once per schema, and one at a time: concurrent CREATE SCHEMA from two cursors is a
        # write-write conflict in DuckDB's catalog even with IF NOT EXISTS.
        with self._lock:
            if name not in self._schemas:
                cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"')
                self._schemas.add(name)

    def _run(self, job: _Job, statements: tuple[Statement, ...], parameters: list[Parameter],
             frames: dict[str, Callable[[], Any]], destination: str | None) -> Any:
        cursor = job.cursor
        for name, load in frames.items():
            cursor.register(name, load())
        values = {p.name: p.value for p in parameters}
        result = None
        for i, statement in enumerate(statements):
            if job.cancelled:
                raise LocalQueryError("cancelled")
            for schema in statement.schemas:
                self._schema(cursor, schema)
            last = i == len(statements) - 1
            text = statement.sql
            if last and destination:
                if "." in destination:
                    self._schema(cursor, destination.rsplit(".", 1)[0])
                text = f"CREATE OR REPLACE TABLE {destination} AS {text}"
            cursor.execute(text, {n: values[n] for n in statement.parameters if n in values})
            if last and not destination and cursor.description is not None:
                result = cursor.to_arrow_table() if hasattr(cursor, "to_arrow_table") else cursor.fetch_arrow_table()
        return result

    def poll(self, key: str) -> tuple[str, Any]:
        """``("running", None)``, ``("done", result)``, ``("failed", message)`` or ``("lost", None)``."""
        with self._lock:
            job = self._jobs.get(key)
        if job is None:
            return "lost", None
        if not job.future.done():
            return "running", None
        error = job.future.exception()
        if error is None:
            return "done", job.future.result()
        if job.cancelled:
            return "cancelled", None
        return "failed", f"{type(error).__name__}: {error}" if not isinstance(error, LocalQueryError) else str(error)

    def jobs(self) -> list[str]:
        """The keys of the jobs this warehouse holds (running or not yet cleaned up)."""
        with self._lock:
            return list(self._jobs)

    def cancel(self, key: str) -> None:
        with self._lock:
            job = self._jobs.get(key)
        if job is not None and not job.future.done():
            job.cancelled = True
            threading.Thread(target=_interrupt_until_done, args=(job,), daemon=True).start()

    def forget(self, key: str) -> None:
        with self._lock:
            job = self._jobs.pop(key, None)
        if job is not None:
            job.cancelled = True
            job.future.cancel()
            if not job.future.done():
                threading.Thread(target=_interrupt_until_done, args=(job,), daemon=True).start()
            if job.future.done():
                job.cursor.close()
            else:
                job.future.add_done_callback(lambda _: job.cursor.close())

    def close(self) -> None:
        for key in list(self._jobs):
            self.forget(key)
        self._threads.shutdown(wait=True, cancel_futures=True)  # the interrupted queries end first
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


def _interrupt_until_done(job: _Job, seconds: float = 60.0) -> None:
    # DuckDB's interrupt reaches only a statement already executing; one sent while the job's
    # thread is between statements would be lost, so keep sending until the job ends.
    deadline = time.monotonic() + seconds
    while not job.future.done() and time.monotonic() < deadline:
        job.cursor.interrupt()
        time.sleep(0.05)
