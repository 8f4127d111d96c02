"""fakesnow's HTTP server, plus the few routes and statements the Snowflake plugin tests need.

Run it in its own process (the ``fakesnow_server`` fixture in conftest.py does)::

    python tests/standins/fakesnow_plus.py --port 0 --port-file /tmp/port

It serves ``fakesnow.server``'s Starlette routes (login, query-request, session, monitoring)
unchanged for everything below and adds, all in memory in this process:

* Real asynchronous execution. fakesnow runs ``execute_async`` queries synchronously and
  returns their rows at once, so a query can never be seen RUNNING. Here a query sent with
  ``asyncExec`` is answered straight away with Snowflake's "detached" reply (code 333334 and
  a query id) and runs in the background; ``/monitoring/queries/{id}`` reports RUNNING, then
  SUCCESS or FAILED_WITH_ERROR (with errorCode / errorMessage). Results are then fetched the
  usual way (``get_results_from_sfqid`` -> ``RESULT_SCAN``), which fakesnow already supports.
* ``SELECT SYSTEM$WAIT(n [, 'SECONDS'|'MINUTES'|'HOURS'|'MILLISECONDS'])`` (also ``CALL``):
  fakesnow lacks it. It sleeps, can be cancelled, and returns ``waited n <unit>``. It is the
  only statement that stays running long enough to be cancelled.
* Cancelling: ``SELECT SYSTEM$CANCEL_QUERY('<id>')`` (or the id bound to ``?`` / ``:1``),
  ``cursor.abort_query(id)`` (``POST /queries/{id}/abort-request``, missing from fakesnow) and
  the connector's own
  cancel-by-request-id (``POST /queries/v1/abort-request``, a no-op in fakesnow) now stop a
  running SYSTEM$WAIT. The query then fails with 000604 "SQL execution canceled" (57014).
  Cancelling a query that is not running fails with 000605.
* ``ALTER SESSION SET QUERY_TAG = '...'`` / ``ALTER SESSION UNSET QUERY_TAG`` and a
  QUERY_TAG session parameter at login (fakesnow raises "not implemented" for the former),
  kept per session.
* ``TABLE(INFORMATION_SCHEMA.QUERY_HISTORY(...))`` and ``..._BY_SESSION(...)``: replaced by
  the queries this process has seen (columns QUERY_ID, QUERY_TEXT, QUERY_TAG, SESSION_ID,
  EXECUTION_STATUS, ERROR_CODE, ERROR_MESSAGE, START_TIME, END_TIME). Arguments are ignored;
  the _BY_SESSION form shows only the current session's queries.
* ``SELECT SYSTEM$PLAIT_FAIL(<error number>, '<message>')``: a test-only statement that fails
  with that Snowflake error number (e.g. 603, an internal error), which fakesnow cannot be
  made to raise. The sql state is XX000.
* Errors are answered, not 500'd: fakesnow lets a SQL syntax error escape as HTTP 500, which
  the connector retries until its network timeout. Here it is 001003 / 42000, as in
  Snowflake, and any other unhandled failure is 009999 / 99999 (fakesnow's "not implemented").

Every query id a client sees is the one this wrapper made, so ids in results, monitoring
and QUERY_HISTORY agree.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import itertools
import json
import re
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fakesnow.server as fs_server
import sqlglot.errors
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

_WAIT_RE = re.compile(
    r"^\s*(?:SELECT|CALL)\s+SYSTEM\$WAIT\s*\(\s*(\d+(?:\.\d+)?)\s*(?:,\s*'(\w+)'\s*)?\)(?:\s+AS\s+(\w+))?\s*;?\s*$",
    re.I,
)
_WAIT_UNITS = {"MILLISECONDS": 0.001, "SECONDS": 1, "MINUTES": 60, "HOURS": 3600}
_CANCEL_RE = re.compile(
    r"^\s*SELECT\s+SYSTEM\$CANCEL_QUERY\s*\(\s*(?:'([^']*)'|\?|:1)\s*\)\s*;?\s*$", re.I
)
_FAIL_RE = re.compile(
    r"^\s*SELECT\s+SYSTEM\$PLAIT_FAIL\s*\(\s*(\d+)\s*,\s*'((?:[^']|'')*)'\s*\)\s*;?\s*$", re.I
)
_SET_TAG_RE = re.compile(
    r"^\s*ALTER\s+SESSION\s+SET\s+QUERY_TAG\s*=\s*'((?:[^']|'')*)'\s*;?\s*$", re.I
)
_UNSET_TAG_RE = re.compile(r"^\s*ALTER\s+SESSION\s+UNSET\s+QUERY_TAG\s*;?\s*$", re.I)
_HISTORY_RE = re.compile(
    r"TABLE\s*\(\s*(?:\w+\.)?INFORMATION_SCHEMA\.QUERY_HISTORY(_BY_SESSION)?\s*\((?:[^()]|\([^()]*\))*\)\s*\)",
    re.I,
)
_HISTORY_COLUMNS = (
    "QUERY_ID",
    "QUERY_TEXT",
    "QUERY_TAG",
    "SESSION_ID",
    "EXECUTION_STATUS",
    "ERROR_CODE",
    "ERROR_MESSAGE",
    "START_TIME",
    "END_TIME",
)


@dataclass
class _Session:
    id: int
    query_tag: str = ""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class _Query:
    sfqid: str
    token: str
    request_id: str | None
    sql: str
    tag: str
    session_id: int
    start: datetime = field(default_factory=lambda: datetime.now(UTC))
    end: datetime | None = None
    status: str = "RUNNING"
    error_code: str | None = None
    error_message: str | None = None
    sql_state: str | None = None
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    def finish(
        self, code: str | None = None, message: str | None = None, sql_state: str | None = None
    ) -> None:
        if self.status != "RUNNING":
            return
        self.end = datetime.now(UTC)
        self.status = "FAILED_WITH_ERROR" if code else "SUCCESS"
        self.error_code, self.error_message, self.sql_state = code, message, sql_state

    def cancel(self) -> bool:
        if self.status != "RUNNING":
            return False
        self.finish("000604", "SQL execution canceled", "57014")
        self.cancelled.set()
        return True


_session_ids = itertools.count(1)
_sessions: dict[str, _Session] = {}
_queries: dict[str, _Query] = {}
_by_request_id: dict[str, _Query] = {}
_background: set[asyncio.Task] = set()


def _error(code: str, message: str, sql_state: str, sfqid: str | None = None) -> dict[str, Any]:
    return {
        "data": {"errorCode": code, "sqlState": sql_state, "queryId": sfqid},
        "code": code,
        "message": message,
        "success": False,
    }


async def _json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if request.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return json.loads(body)


def _replace_sql(
    request: Request, body_json: dict[str, Any], sql: str, keep_bindings: bool = True
) -> None:
    """Change the sql text that fakesnow's handler will read from this (already read) request."""
    new = {**body_json, "sqlText": sql}
    if not keep_bindings:
        new.pop("bindings", None)
    raw = json.dumps(new).encode()
    if request.headers.get("Content-Encoding") == "gzip":
        raw = gzip.compress(raw)
    request._body = raw  # noqa: SLF001 - Starlette caches the body here; fakesnow's handler reads it


def _lit(v: object) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, datetime):
        return f"CAST('{v.isoformat()}' AS TIMESTAMP_LTZ)"
    if isinstance(v, int):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def _history_sql(session_id: int | None, tag: str | None = None) -> str:
    # The history becomes literal rows in the SQL; a lookup by tag gets only that tag's rows, so
    # the statement stays small however many queries the session has run.
    rows = [q for q in _queries.values() if (session_id is None or q.session_id == session_id)
            and (tag is None or q.tag == tag)]
    if not rows:
        nulls = ", ".join(f"CAST(NULL AS VARCHAR) AS {c}" for c in _HISTORY_COLUMNS)
        return f"(SELECT {nulls} WHERE 1 = 0)"
    selects = []
    for q in rows:
        values = (
            q.sfqid,
            q.sql,
            q.tag,
            q.session_id,
            q.status,
            q.error_code,
            q.error_message,
            q.start,
            q.end,
        )
        selects.append(
            "SELECT " + ", ".join(f"{_lit(v)} AS {c}" for v, c in zip(values, _HISTORY_COLUMNS))
        )
    return "(" + " UNION ALL ".join(selects) + ")"


async def _call_fakesnow(request: Request, q: _Query) -> dict[str, Any]:
    """Run the request's (possibly rewritten) sql with fakesnow's own handler; never raises."""
    try:
        async with _sessions[q.token].lock:
            resp = await fs_server.query_request(request)
        payload = json.loads(bytes(resp.body))
        if resp.status_code >= 500:
            payload = _error("009999", payload.get("message") or "fakesnow failed", "99999")
    except sqlglot.errors.ParseError as e:
        payload = _error("001003", f"SQL compilation error: {e}", "42000")
    except Exception as e:  # noqa: BLE001 - report fakesnow's bugs / gaps as a query error
        payload = _error("009999", f"fakesnow failed: {type(e).__name__}: {e}", "99999")

    data = payload.get("data") or {}
    if payload.get("success"):
        # give the client our id; alias fakesnow's cached result so RESULT_SCAN(our id) works
        conn = fs_server.sessions.get(q.token)
        if conn and (fs_id := data.get("queryId")) and fs_id in conn.results_cache:
            conn.results_cache[q.sfqid] = conn.results_cache[fs_id]
        q.finish()
    else:
        q.finish(
            payload.get("code") or "009999", payload.get("message") or "", data.get("sqlState")
        )
    payload["data"] = {**data, "queryId": q.sfqid}
    return payload


async def _answer(
    request: Request, body_json: dict[str, Any], q: _Query, column: str, value: str
) -> dict[str, Any]:
    """Answer with one VARCHAR row, run through fakesnow so that RESULT_SCAN(id) finds it too."""
    _replace_sql(request, body_json, f'SELECT {_lit(value)} AS "{column}"', keep_bindings=False)
    return await _call_fakesnow(request, q)


async def _run(request: Request, body_json: dict[str, Any], q: _Query) -> dict[str, Any]:
    session = _sessions[q.token]
    sql = q.sql
    if m := _WAIT_RE.match(sql):
        unit = (m[2] or "SECONDS").upper()
        if unit not in _WAIT_UNITS:
            q.finish("001044", f"Invalid time unit {unit} for SYSTEM$WAIT", "42P13")
            return _error(q.error_code or "", q.error_message or "", "42P13", q.sfqid)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(q.cancelled.wait(), float(m[1]) * _WAIT_UNITS[unit])
        if q.status != "RUNNING":  # cancelled
            return _error(q.error_code or "", q.error_message or "", q.sql_state or "", q.sfqid)
        return await _answer(request, body_json, q, (m[3] or "SYSTEM$WAIT").upper(), f"waited {m[1]} {unit.lower()}")
    if m := _CANCEL_RE.match(sql):
        target_id = (
            m[1]
            if m[1] is not None
            else str(((body_json.get("bindings") or {}).get("1") or {}).get("value"))
        )
        target = _queries.get(target_id)
        if target is None or not target.cancel():
            q.finish("000605", "Identified SQL statement is not currently executing.", "01000")
            return _error(q.error_code or "", q.error_message or "", "01000", q.sfqid)
        return await _answer(
            request, body_json, q, "SYSTEM$CANCEL_QUERY", f"query [{target_id}] terminated."
        )
    if m := _FAIL_RE.match(sql):
        code, message = f"{int(m[1]):06d}", m[2].replace("''", "'")
        q.finish(code, message, "XX000")
        return _error(code, message, "XX000", q.sfqid)
    if m := _SET_TAG_RE.match(sql):
        session.query_tag = m[1].replace("''", "'")
        return await _answer(request, body_json, q, "status", "Statement executed successfully.")
    if _UNSET_TAG_RE.match(sql):
        session.query_tag = ""
        return await _answer(request, body_json, q, "status", "Statement executed successfully.")
    if _HISTORY_RE.search(sql):
        tag = None
        if re.search(r"\bquery_tag\s*=\s*\?", sql, re.I) and sql.count("?") == 1:
            tag = str(((body_json.get("bindings") or {}).get("1") or {}).get("value"))
        rewritten = _HISTORY_RE.sub(lambda hm: _history_sql(session.id if hm[1] else None, tag), sql)
        _replace_sql(request, body_json, rewritten)
    return await _call_fakesnow(request, q)


async def query_request(request: Request) -> JSONResponse:
    body_json = await _json_body(request)
    token = fs_server.to_token(request) if request.headers.get("Authorization") else ""
    if token not in _sessions or body_json.get("describeOnly"):
        # unknown session (fakesnow answers 390104) or a describe: fakesnow's handler as is
        return await fs_server.query_request(request)

    session = _sessions[token]
    request_id = request.query_params.get("requestId")
    q = _Query(
        str(uuid.uuid4()), token, request_id, body_json["sqlText"], session.query_tag, session.id
    )
    _queries[q.sfqid] = q
    if request_id:
        _by_request_id[request_id] = q

    if not body_json.get("asyncExec"):
        return JSONResponse(await _run(request, body_json, q))

    task = asyncio.create_task(_run(request, body_json, q))
    _background.add(task)
    task.add_done_callback(_background.discard)
    return JSONResponse(
        {
            "code": "333334",
            "data": {"queryId": q.sfqid, "getResultUrl": f"/queries/{q.sfqid}/result"},
            "message": "Asynchronous execution in progress. Use provided query id to perform query monitoring "
            "and management.",
            "success": True,
        }
    )


async def login_request(request: Request) -> JSONResponse:
    body_json = await _json_body(request)
    resp = await fs_server.login_request(request)
    token = json.loads(bytes(resp.body))["data"]["token"]
    params = body_json["data"].get("SESSION_PARAMETERS") or {}
    _sessions[token] = _Session(next(_session_ids), str(params.get("QUERY_TAG") or ""))
    return resp


def monitoring_query(request: Request) -> JSONResponse:
    # Any session may watch any query, as one Snowflake user's sessions can: a restarted engine
    # polls the query its predecessor started from a new session.
    q = _queries.get(request.path_params["sfqid"])
    if q is None:
        return fs_server.monitoring_query(request)
    query: dict[str, Any] = {"id": q.sfqid, "status": q.status, "sqlText": q.sql}
    if q.error_code:
        query |= {"errorCode": q.error_code, "errorMessage": q.error_message}
    return JSONResponse({"data": {"queries": [query], "sqlState": q.sql_state}, "success": True})


async def abort_by_request_id(request: Request) -> JSONResponse:
    """The connector's own cancel (timeouts, Ctrl-C): body {"sqlText", "requestId"}."""
    body_json = await _json_body(request)
    if q := _by_request_id.get(body_json.get("requestId") or ""):
        q.cancel()
    return JSONResponse({"data": None, "code": None, "message": None, "success": True})


def abort_by_query_id(request: Request) -> JSONResponse:
    """``cursor.abort_query(sfqid)``; success is False when the query isn't running."""
    q = _queries.get(request.path_params["sfqid"])
    if q is not None and q.cancel():
        return JSONResponse({"data": None, "code": None, "message": None, "success": True})
    return JSONResponse(
        {
            "data": None,
            "code": "000605",
            "message": "Identified SQL statement is not currently executing.",
            "success": False,
        }
    )


def health(_: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def _replace(route: Route) -> Route:
    handlers = {
        "/session/v1/login-request": login_request,
        "/queries/v1/query-request": query_request,
        "/monitoring/queries/{sfqid}": monitoring_query,
        "/queries/v1/abort-request": abort_by_request_id,
    }
    if route.path in handlers:
        return Route(
            route.path,
            handlers[route.path],
            methods=["GET"] if "monitoring" in route.path else ["POST"],
        )
    return route


routes = [
    *(_replace(r) for r in fs_server.routes),
    # after /queries/v1/abort-request, which this pattern also matches
    Route("/queries/{sfqid}/abort-request", abort_by_query_id, methods=["POST"]),
    Route("/fakesnow-plus/health", health, methods=["GET"]),
]
app = Starlette(routes=routes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (the default) picks a free port")
    parser.add_argument("--port-file", type=Path, help="write the port listened on here once bound")
    args = parser.parse_args(argv)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    port = sock.getsockname()[1]
    if args.port_file:
        tmp = args.port_file.with_suffix(".tmp")
        tmp.write_text(str(port))
        tmp.replace(args.port_file)
    print(f"fakesnow_plus listening on http://{args.host}:{port}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
