"""The ``snowflake`` task type: registered through the ``plait_task_types`` hook."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plait import CompileError, PlaitError, Status, TaskType, hookimpl
from plait.sdk import AttemptContext, ErrorKind, Handle, Phase, TaskTemplate
from plait_sql.results import column_type
from plait_sql.task import QueryTask, result_table_name
from plait_sql.template import render

from plait_snowflake.config import Snowflake

CANCELLED = 604  # "SQL execution canceled"
NOT_RUNNING = 605
# Snowflake error numbers another attempt may get past: internal errors and lost sessions.
RETRYABLE = {603, 390111, 390114, 390144}
_COLUMNS = {"bool": "BOOLEAN", "int": "INTEGER", "float": "FLOAT", "decimal": "NUMBER(38, 9)", "date": "DATE",
            "timestamp_tz": "TIMESTAMP_TZ", "timestamp": "TIMESTAMP_NTZ", "binary": "BINARY", "string": "VARCHAR"}
_CONNECTION = ("connection", "account", "user", "password_secret", "database", "db_schema", "warehouse", "role",
               "host", "port", "protocol")


class SnowflakeTask(QueryTask):
    """Runs a query asynchronously, tagged with a name derived from the attempt id."""

    name = "snowflake"
    dialect = "snowflake"
    config_model = Snowflake

    def __init__(self) -> None:
        super().__init__()
        self._connections: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._submit_lock = threading.Lock()

    def check_remote(self, task: TaskTemplate, config: Any) -> None:
        if config.password_secret and config.password_secret not in task.secrets:
            raise CompileError(f"snowflake task {task.name!r}: password_secret {config.password_secret!r} is not "
                               f"among the task's secrets; add secrets=[{config.password_secret!r}]")

    def pools_remote(self, task: TaskTemplate, config: Any) -> dict[str, int]:
        return {f"snowflake:{config.account or _toml_account(config.connection) or 'default'}": 1}

    # -- connections ---------------------------------------------------------------------------

    def connect(self, settings: dict[str, Any], secrets: dict[str, str], purpose: str = "") -> Any:
        """A connection for ``settings``, one per identity and purpose, reused.

        Submissions have a session of their own (``purpose="submit"``): the query tag is a session
        setting, and no other statement may run while it is set.
        """
        identity = hashlib.sha256(json.dumps([settings, purpose], sort_keys=True).encode()).hexdigest()
        with self._lock:
            connection = self._connections.get(identity)
            if connection is None or connection.is_closed():
                connection = self._connections[identity] = self._open(settings, secrets)
            return connection

    @staticmethod
    def _open(settings: dict[str, Any], secrets: dict[str, str]) -> Any:
        import snowflake.connector

        arguments: dict[str, Any] = {"paramstyle": "qmark", "application": "plait"}
        explicit = {k: v for k, v in settings.items()
                    if v is not None and k not in ("connection", "password_secret", "db_schema")}
        explicit["schema"] = settings.get("db_schema")
        arguments.update({k: v for k, v in explicit.items() if v is not None})
        secret = settings.get("password_secret")
        if secret:
            if secret not in secrets:
                raise PlaitError(f"Snowflake: the secret {secret!r} named by password_secret has no value; set "
                                 "PLAIT_SECRET_<NAME> or write it under $PLAIT_HOME/secrets/")
            arguments["password"] = secrets[secret]
        if settings.get("connection"):
            arguments["connection_name"] = settings["connection"]
        elif not settings.get("account"):
            if not _toml_account(None):
                raise PlaitError("Snowflake: no connection. Name one from ~/.snowflake/connections.toml with "
                                 "connection=, or give account= and user= with password_secret=")
        try:
            return snowflake.connector.connect(**arguments)
        except (snowflake.connector.errors.OperationalError, snowflake.connector.errors.InterfaceError) as e:
            # the network or the service: another attempt may get through (a system error, retried)
            raise ConnectionError(f"Snowflake: cannot reach account "
                                  f"{settings.get('account') or settings.get('connection')!r}: {_message(e)}") from None
        except snowflake.connector.errors.Error as e:
            # the connector's messages name the account and user, never the password
            raise PlaitError(f"Snowflake: cannot connect to account {settings.get('account') or settings.get('connection')!r}: "
                             f"{_message(e)}") from None

    # -- the hooks -------------------------------------------------------------------------------

    def submit_remote(self, ctx: AttemptContext, task: TaskTemplate, config: Snowflake,
                      kinds: dict[str, str]) -> Handle:
        settings = config.model_dump(include=set(_CONNECTION))
        connection = self.connect(settings, ctx.secrets)
        tag = "plait-" + ctx.external_name(100)
        scratch = f"PLAIT_IN_{hashlib.sha256(tag.encode()).hexdigest()[:16].upper()}"
        rendered = render(task, config.query, ctx.inputs, placeholder=lambda p, i: "?",
                          frame_table=lambda n: f"{scratch}_{n.upper()}", table_name=lambda t: t.name)
        handle: Handle = {"tag": tag, "settings": settings, "outputs": kinds,
                          "loaded": [f"{scratch}_{n.upper()}" for n in rendered.frames]}
        sql = rendered.sql
        if "table" in kinds.values():
            handle["destination"] = (config.destination or result_table_name(ctx, task.name)).upper()
            sql = f"CREATE OR REPLACE TABLE {handle['destination']} AS\n{sql}"
        found = self._find(connection, tag, settings.get("database"))
        if found:
            handle["query_id"] = found
            return handle  # submitted before the engine restarted: attach to that query
        for name, table in zip(rendered.frames, handle["loaded"], strict=True):
            self._load(connection, table, ctx.blobs.read_bytes(ctx.inputs[name]["uri"]))
        import snowflake.connector

        submitter = self.connect(settings, ctx.secrets, purpose="submit")
        with self._submit_lock:  # the tag is a session setting: one tagged statement at a time
            cursor = submitter.cursor()
            try:
                cursor.execute(f"ALTER SESSION SET QUERY_TAG = '{tag}'")  # tag: [a-z0-9-] only
                cursor.execute_async(sql, [p.value for p in rendered.parameters])
                handle["query_id"] = cursor.sfqid
            except snowflake.connector.errors.ProgrammingError as e:
                handle["error"] = _failure(e)  # some servers check a statement before queueing it
            finally:
                cursor.execute("ALTER SESSION UNSET QUERY_TAG")
        return handle

    @staticmethod
    def _find(connection: Any, tag: str, database: str | None) -> str | None:
        """The id of a query this attempt already started, from the account's query history."""
        schema = "INFORMATION_SCHEMA" if database else "SNOWFLAKE.INFORMATION_SCHEMA"  # needs a database
        rows = connection.cursor().execute(
            f"SELECT query_id FROM TABLE({schema}.QUERY_HISTORY(RESULT_LIMIT => 10000)) "
            "WHERE query_tag = ? AND query_text NOT LIKE 'ALTER SESSION%' ORDER BY start_time DESC", (tag,)).fetchall()
        return str(rows[0][0]) if rows else None

    @staticmethod
    def _load(connection: Any, table: str, parquet: bytes) -> None:
        """Load a data-frame input into ``table`` with bound inserts (no stage needed)."""
        import pyarrow.parquet as pq

        data = pq.read_table(io.BytesIO(parquet))
        data = data.drop_columns([c for c in data.column_names if c == "__index_level_0__"])
        names = [f.name.upper() for f in data.schema]
        if len(set(names)) < len(names):
            raise PlaitError(f"Snowflake: the data frame's columns {data.column_names} collide once upper-cased, "
                             "as Snowflake stores unquoted names; rename them")
        columns = ", ".join('"{}" {}'.format(n.replace('"', '""'), column_type(f.type, _COLUMNS))
                            for n, f in zip(names, data.schema, strict=True))
        cursor = connection.cursor()
        cursor.execute(f"CREATE OR REPLACE TABLE {table} ({columns})")
        marks = ", ".join("?" for _ in data.column_names)
        rows = [tuple(row.values()) for row in data.to_pylist()]
        if rows:
            cursor.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)

    def poll_remote(self, ctx: AttemptContext, handle: Handle) -> Status:
        if "error" in handle:
            return _status_of(handle["error"])
        import snowflake.connector

        connection = self.connect(handle["settings"], ctx.secrets)
        query_id = handle["query_id"]
        status = connection.get_query_status(query_id)
        if connection.is_still_running(status):
            waiting = status.name in ("QUEUED", "QUEUED_REPARING_WAREHOUSE", "RESUMING_WAREHOUSE", "BLOCKED")
            return Status(Phase.QUEUED if waiting else Phase.RUNNING, f"query {query_id}: {status.name.lower()}")
        try:
            connection.get_query_status_throw_if_error(query_id)
        except snowflake.connector.errors.ProgrammingError as e:
            return _status_of(_failure(e))
        if status.name == "ABORTED":
            return Status(Phase.ABORTED, f"query {query_id} was cancelled")
        if "table" in handle["outputs"].values():
            return self.finish(ctx, handle, None, {"name": handle["destination"], "connection": "snowflake"})
        result = None
        if handle["outputs"]:
            cursor = connection.cursor()
            cursor.get_results_from_sfqid(query_id)
            result = cursor.fetch_arrow_all(force_return_table=True)
        return self.finish(ctx, handle, result, None)

    def abort_remote(self, ctx: AttemptContext, handle: Handle) -> None:
        if "query_id" not in handle:
            return
        import snowflake.connector

        try:
            self.connect(handle["settings"], ctx.secrets).cursor().execute(
                "SELECT SYSTEM$CANCEL_QUERY(?)", (handle["query_id"],))
        except snowflake.connector.errors.ProgrammingError as e:
            if e.errno != NOT_RUNNING:
                raise

    def cleanup_remote(self, ctx: AttemptContext, handle: Handle) -> None:
        if handle.get("loaded"):
            cursor = self.connect(handle["settings"], ctx.secrets).cursor()
            for table in handle["loaded"]:
                cursor.execute(f"DROP TABLE IF EXISTS {table}")

    def close(self) -> None:
        super().close()
        with self._lock:
            for connection in self._connections.values():
                connection.close()
            self._connections.clear()


def _failure(error: Any) -> dict[str, Any]:
    return {"errno": error.errno, "sqlstate": error.sqlstate, "message": _message(error)}


def _message(error: Any) -> str:
    return str(getattr(error, "raw_msg", None) or error).strip()


def _status_of(failure: dict[str, Any]) -> Status:
    errno = failure.get("errno")
    if errno == CANCELLED:
        return Status(Phase.ABORTED, f"the query was cancelled: {failure['message']}")
    message = f"Snowflake error {errno} ({failure.get('sqlstate')}): {failure['message']}"
    if errno in RETRYABLE:
        return Status.failed(message, error_kind=ErrorKind.SYSTEM)
    return Status.failed(message, retryable=False)


def _toml_account(name: str | None) -> str | None:
    """The account of a connection in ``connections.toml`` (the default one if ``name`` is None)."""
    home = Path(os.environ.get("SNOWFLAKE_HOME") or Path.home() / ".snowflake")
    path = home / "connections.toml"
    if not path.is_file():
        return None
    try:
        connections = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError:
        return None
    name = name or os.environ.get("SNOWFLAKE_DEFAULT_CONNECTION_NAME") or "default"
    account = connections.get(name, {}).get("account")
    return str(account) if account else None


@hookimpl
def plait_task_types(register: Callable[[TaskType], None]) -> None:
    register(SnowflakeTask())
