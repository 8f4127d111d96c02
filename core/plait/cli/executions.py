"""Reading executions for ``plait executions list|show|events|logs`` and ``plait pools``: from
the local store, or from a server when ``PLAIT_SERVER`` (or ``--server``) is set. Both give the
same typed answers (:mod:`plait.model.api.executions`), so the commands print the same."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from plait.client import Client, server_or_local
from plait.model.api.executions import (
    AttemptLogs,
    EventOut,
    ExecutionPage,
    ExecutionRow,
    ExecutionSummary,
    LogPart,
    Pools,
)
from plait.model.errors import InputError
from plait.service.query import ExecutionFilter

FOLLOW_POLL_S = 0.25
"""How often ``show --follow`` looks at the local store for new events."""


def _local_store() -> Any:
    from plait.model.settings import Settings
    from plait.storage.events import EventStore

    return EventStore(Settings.from_env().db_url)


def remote() -> Client | None:
    """A client of the server the command line talks to, or None for the local store."""
    return Client.from_env() if server_or_local() else None


def list_page(where: ExecutionFilter, limit: int, cursor: str | None) -> ExecutionPage:
    client = remote()
    if client is None:
        from plait.service.query import list_executions

        store = _local_store()
        try:
            page = list_executions(store, limit=limit, cursor=cursor, where=where)
        finally:
            store.close()
        return ExecutionPage(items=[ExecutionRow(**r) for r in page.items], next_cursor=page.next_cursor)
    if where.project is None or where.domain is None:
        raise InputError("listing a server's executions needs --project and --domain")
    with client:
        return client.get(  # type: ignore[no-any-return]
            f"/projects/{where.project}/domains/{where.domain}/executions", ExecutionPage,
            phase=where.phase, workflow=where.workflow, launch_plan=where.launch_plan,
            launched_by=where.launched_by, prefix=where.id_prefix, tag=list(where.tags) or None,
            created_after=where.created_after, created_before=where.created_before, limit=limit, cursor=cursor)


def summary(execution_id: str) -> ExecutionSummary:
    client = remote()
    if client is None:
        from plait.service.summary import execution_summary

        store = _local_store()
        try:
            return execution_summary(store, store.execution(execution_id))
        finally:
            store.close()
    with client:
        return client.get(f"/executions/{execution_id}", ExecutionSummary)  # type: ignore[no-any-return]


def events(execution_id: str) -> list[EventOut]:
    client = remote()
    if client is None:
        from plait.service.summary import event_out

        store = _local_store()
        try:
            row = store.execution(execution_id)
            found, after = [], 0
            while batch := store.events_after(row["id"], after):
                found += [event_out(seq, e) for seq, e in batch]
                after = batch[-1][0]
            return found
        finally:
            store.close()
    with client:
        return client.get(f"/executions/{execution_id}/events", list[EventOut])  # type: ignore[no-any-return]


def follow(execution_id: str) -> Iterator[EventOut]:
    """The execution's events as they are recorded, until its own end (a server streams them;
    locally the store is polled)."""
    from plait.service.summary import ends_execution, event_out

    client = remote()
    if client is not None:
        with client:
            for name, data in client.stream(f"/executions/{execution_id}/events", stream=1):
                if name == "end":
                    return
                yield EventOut.model_validate_json(data)
        return
    store = _local_store()
    try:
        xid, after = store.execution(execution_id)["id"], 0
        while True:
            batch = store.events_after(xid, after)
            for seq, event in batch:
                out = event_out(seq, event)
                yield out
                after = seq
                if ends_execution(out):
                    return
            if not batch:
                time.sleep(FOLLOW_POLL_S)
    finally:
        store.close()


def attempt_logs(execution_id: str, node: str, attempt: int | None, item: int | None,
                 tail: int | None) -> AttemptLogs:
    """An attempt's log as it is now (``plait executions logs`` without --follow)."""
    client = remote()
    if client is None:
        from plait.service.logs import find_attempt, read_logs

        store = _local_store()
        try:
            ref = find_attempt(store, execution_id, node, attempt=attempt, item=item)
            notes: list[str] = []
            parts = read_logs(store, ref, tail, notes.append)
        finally:
            store.close()
        return AttemptLogs(attempt=ref.label, notes=notes,
                           parts=[LogPart(stream=p.stream, text=p.text, source=p.source, kind=p.kind)
                                  for p in parts])
    with client:
        return client.get(f"/executions/{execution_id}/logs/{node}", AttemptLogs,  # type: ignore[no-any-return]
                          attempt=attempt, item=item, tail=tail)


def pools() -> Pools:
    client = remote()
    if client is None:
        from plait.service.summary import pools_usage
        from plait.tokens.config import TokenConfig

        store = _local_store()
        try:
            found, source = pools_usage(store, TokenConfig.load())
        finally:
            store.close()
        return Pools(pools=found, source=source)
    with client:
        return client.get("/pools", Pools)  # type: ignore[no-any-return]
