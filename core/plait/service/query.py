"""Listing executions: per tenant, newest first, a page at a time.

Pages are keyset pages: the cursor is the (created, id) of the last row shown, and the next
page is ``WHERE (created, id) < (cursor) ORDER BY created DESC, id DESC LIMIT n``, which the
index ``ix_executions_tenant`` (project, domain, created, id) answers directly (with a phase,
``ix_executions_tenant_phase``). No OFFSET: the thousandth page costs what the first does, and
executions created while someone pages do not shift or repeat rows.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from plait.model.errors import InputError
from plait.storage.events import EventStore, executions


@dataclass(frozen=True)
class Page:
    """One page of rows and the cursor of the next page (None on the last page)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(created: float, execution_id: str) -> str:
    """An opaque cursor: base64 of the row's (created, id); floats round-trip exactly in JSON."""
    return base64.urlsafe_b64encode(json.dumps([created, execution_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        created, execution_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(created, int | float) or not isinstance(execution_id, str):
            raise ValueError
        return float(created), execution_id
    except (ValueError, TypeError, binascii.Error):
        raise InputError(f"{cursor!r} is not a cursor of `plait executions list`; "
                         "pass the one the previous page printed") from None


def executions_query(project: str | None = None, domain: str | None = None, phase: str | None = None,
                     limit: int = 20, cursor: str | None = None) -> sa.Select[Any]:
    """The statement :func:`list_executions` runs (``limit`` + 1 rows, to know if more follow)."""
    query = sa.select(executions)
    for column, value in (("project", project), ("domain", domain), ("phase", phase)):
        if value is not None:
            query = query.where(executions.c[column] == value)
    if cursor is not None:
        created, execution_id = decode_cursor(cursor)
        query = query.where(sa.tuple_(executions.c.created, executions.c.id) < sa.tuple_(created, execution_id))
    return query.order_by(executions.c.created.desc(), executions.c.id.desc()).limit(limit + 1)


def list_executions(store: EventStore, project: str | None = None, domain: str | None = None,
                    phase: str | None = None, limit: int = 20, cursor: str | None = None) -> Page:
    """Executions newest first (by created, then id), filtered by tenant and phase, ``limit`` a page."""
    if limit < 1:
        raise InputError(f"a page holds at least one execution, not {limit}")
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(executions_query(project, domain, phase, limit, cursor)).mappings()]
    if len(rows) <= limit:
        return Page(rows, None)
    last = rows[limit - 1]
    return Page(rows[:limit], encode_cursor(last["created"], last["id"]))
