"""Executions: a tenant's list (filters, cursor pages), one execution's summary, its events (a
JSON list, or server-sent events that follow it live until it ends) and an attempt's log.

Routes addressed by an execution's id look the execution up first and then check the caller's
role in its project; a caller with none there is told ``no execution 'ID'``, as if it did not
exist, so ids of other projects do not leak.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from fastapi.responses import StreamingResponse
from plait.model.api.executions import (
    AttemptLogs,
    EventOut,
    ExecutionPage,
    ExecutionRow,
    ExecutionSummary,
    LogPart,
)
from plait.model.status import Phase
from plait.service.logs import find_attempt, read_logs
from plait.service.query import ExecutionFilter, list_executions
from plait.service.summary import ends_execution, event_out, execution_summary
from plait.storage.access import User
from plait.storage.events import EventStore, executions
from starlette.concurrency import run_in_threadpool

from plait_server.app import API
from plait_server.auth import ROLE_MARK, CurrentUser, Viewer, authorize

router = APIRouter(prefix=API, tags=["executions"])
ORDER = 30

POLL_S = 0.25
"""How often a stream looks for new events."""

ENDED_PHASES = {p.value for p in Phase if p.terminal}

KEEPALIVE_S = 15.0
"""A comment line this often on a quiet stream, so proxies keep it and a gone client is noticed."""


def _store(request: Request) -> EventStore:
    store: EventStore = request.app.state.store
    return store


@router.get("/projects/{project}/domains/{domain}/executions")
def list_tenant_executions(
        request: Request, access: Viewer, domain: str,
        phase: Annotated[str | None, Query(description="Only executions in this phase")] = None,
        workflow: Annotated[str | None, Query(description="Only this workflow's executions")] = None,
        launch_plan: Annotated[str | None, Query(description="Only those launched from this launch plan")] = None,
        launched_by: Annotated[str | None, Query(description="Only those this user (or `schedule`) launched")] = None,
        prefix: Annotated[str | None, Query(description="Only ids (names) starting with this")] = None,
        tag: Annotated[list[str] | None, Query(description="Only executions with this tag (repeat: all of them)")] = None,
        created_after: Annotated[float | None, Query(description="Created at or after (seconds since the epoch)")] = None,
        created_before: Annotated[float | None, Query(description="Created before (seconds since the epoch)")] = None,
        limit: Annotated[int, Query(ge=1, le=500, description="Executions per page")] = 50,
        cursor: Annotated[str | None, Query(description="The next_cursor of the previous page")] = None,
) -> ExecutionPage:
    """The tenant's executions, newest first, a page at a time; every filter given must match."""
    where = ExecutionFilter(project=access.project, domain=domain, phase=phase, workflow=workflow,
                            launch_plan=launch_plan, launched_by=launched_by, id_prefix=prefix,
                            tags=tuple(tag or ()), created_after=created_after, created_before=created_before)
    page = list_executions(_store(request), limit=limit, cursor=cursor, where=where)
    return ExecutionPage(items=[ExecutionRow(**r) for r in page.items], next_cursor=page.next_cursor)


def execution_role(needed: str) -> Any:
    """A dependency for routes under ``/executions/{execution_id}``: the execution's row, if the
    caller's role in its project allows ``needed`` (see :func:`visible_execution`)."""

    def dependency(request: Request, user: CurrentUser,
                   execution_id: Annotated[str, Path(description="The execution's id")]) -> dict[str, Any]:
        return visible_execution(request, user, execution_id, needed)

    setattr(dependency, ROLE_MARK, needed)
    return Depends(dependency)


ViewedExecution = Annotated[dict[str, Any], execution_role("viewer")]
LaunchedExecution = Annotated[dict[str, Any], execution_role("launcher")]


def visible_execution(request: Request, user: User, execution_id: str, needed: str = "viewer") -> dict[str, Any]:
    """The execution's row if the caller has ``needed`` in its project: 404 ``no execution`` when
    it has no role there (as for an id that does not exist), 403 when its role is too low."""
    with _store(request).engine.connect() as conn:
        row = conn.execute(sa.select(executions).where(executions.c.id == execution_id)).mappings().first()
    if row is not None:
        try:
            authorize(request, user, row["project"], needed)
            return dict(row)
        except HTTPException as refused:
            if refused.status_code != 404:
                raise
    raise HTTPException(404, f"no execution {execution_id!r}")


@router.get("/executions/{execution_id}")
def get_execution(request: Request, row: ViewedExecution) -> ExecutionSummary:
    """The execution's phase, inputs, outputs once it succeeded, error, and each node's attempts."""
    return execution_summary(_store(request), row)


@router.get("/executions/{execution_id}/events", response_model=list[EventOut],
            responses={200: {"content": {"text/event-stream": {}}}})
def get_events(
        request: Request, row: ViewedExecution,
        after: Annotated[int, Query(ge=0, description="Only events after this seq")] = 0,
        stream: Annotated[bool, Query(description="Server-sent events, live until the execution ends")] = False,
        accept: Annotated[str | None, Header()] = None,
        last_event_id: Annotated[str | None, Header()] = None,
) -> Any:
    """The execution's events in order; as server-sent events (``Accept: text/event-stream`` or
    ``?stream=1``) it follows the execution until it ends, resuming after ``Last-Event-ID``."""
    store = _store(request)
    if not (stream or "text/event-stream" in (accept or "")):
        found: list[EventOut] = []
        while True:
            batch = store.events_after(row["id"], after)
            found += [event_out(seq, e) for seq, e in batch]
            if len(batch) < 1000:
                return found
            after = batch[-1][0]
    if last_event_id:
        try:
            after = max(after, int(last_event_id))
        except ValueError:
            raise HTTPException(400, f"Last-Event-ID {last_event_id!r} is not an event's seq") from None
    return StreamingResponse(follow_events(request, store, row["id"], after), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def follow_events(request: Request, store: EventStore, execution_id: str, after: int) -> AsyncIterator[str]:
    """SSE frames of the execution's events from ``after`` on, until its own end; then ``end``.

    A coroutine, so a follower waits on the event loop rather than holding one of the server's
    threads: hundreds of followers leave the API as quick as none. Each read of the store runs
    in a thread for the moment it takes. A client that resumes after the execution's last event
    (``Last-Event-ID``) gets ``end`` at once: the execution's recorded phase says it ended.
    """
    quiet_since = time.monotonic()
    ended = False
    while True:
        batch = await run_in_threadpool(store.events_after, execution_id, after)
        for seq, event in batch:
            out = event_out(seq, event)
            yield f"id: {seq}\nevent: {out.kind}\ndata: {out.model_dump_json()}\n\n"
            after = seq
            ended = ended or ends_execution(out)
        if batch:
            quiet_since = time.monotonic()
        elif not ended and await run_in_threadpool(_has_ended, store, execution_id):
            ended = True  # its end was written before ``after``: read once more, then stop
            continue
        if ended and len(batch) < 1000:
            yield f"event: end\ndata: {json.dumps({'seq': after})}\n\n"
            return
        if not batch:
            if await request.is_disconnected():
                return
            if time.monotonic() - quiet_since > KEEPALIVE_S:
                yield ": still running\n\n"
                quiet_since = time.monotonic()
            await asyncio.sleep(POLL_S)


def _has_ended(store: EventStore, execution_id: str) -> bool:
    with store.engine.connect() as conn:
        phase = conn.execute(sa.select(executions.c.phase).where(executions.c.id == execution_id)).scalar()
    return phase in ENDED_PHASES


@router.get("/executions/{execution_id}/logs/{node:path}")
def get_logs(
        request: Request, row: ViewedExecution, node: str,
        attempt: Annotated[int | None, Query(ge=1, description="Which attempt; the latest by default")] = None,
        item: Annotated[int | None, Query(ge=0, description="A map node's item, by index")] = None,
        tail: Annotated[int | None, Query(ge=1, description="Only the last N lines of each stream")] = None,
) -> AttemptLogs:
    """An attempt's log as it is now: its kept files once it ended; while it runs, its files or its pod."""
    store = _store(request)
    ref = find_attempt(store, row["id"], node, attempt=attempt, item=item)
    notes: list[str] = []
    parts = read_logs(store, ref, tail, notes.append)
    return AttemptLogs(attempt=ref.label, notes=notes,
                       parts=[LogPart(stream=p.stream, text=p.text, source=p.source, kind=p.kind) for p in parts])
