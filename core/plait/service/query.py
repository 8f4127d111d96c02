"""Listing executions: per tenant, newest first, a page at a time, under any set of filters.

Pages are keyset pages: the cursor is the (created, id) of the last row shown, and the next
page is ``WHERE (created, id) < (cursor) ORDER BY created DESC, id DESC LIMIT n``. No OFFSET:
the thousandth page costs what the first does, and executions created while someone pages do
not shift or repeat rows. Any (created, id) is a place in every filter's order, so a cursor
stays valid when the filters change.

Each filter has an index ending in (created, id) (revisions 0002 and 0004), so a tenant's page
under one filter is a backward range scan of that index:

========================  ====================================================
filter                    index
========================  ====================================================
(tenant only)             ``ix_executions_tenant`` (project, domain, created, id)
phase                     ``ix_executions_tenant_phase``
workflow                  ``ix_executions_workflow``
launch plan               ``ix_executions_launch_plan``
launched by               ``ix_executions_launched_by``
tag                       ``pk_execution_tags`` (project, domain, tag, created, execution_id)
created after / before    the created column of whichever index is used
id prefix                 checked on the index entries read (the id is in every index)
========================  ====================================================

With several filters the database picks the index (the most selective one by its statistics)
and checks the rest on the rows it reads; with tags, the first tag's key drives the scan and
the others are probed by their primary key. Without a tenant no index orders the rows: that is
the local command line's listing of a small store.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from plait.model.errors import InputError
from plait.model.status import Phase
from plait.storage.events import EventStore, execution_tags, executions

MAX_PAGE = 500
"""The most executions one page holds."""

MAX_TAGS = 8
"""The most tags one listing may require (each is an index probe per row read)."""


@dataclass(frozen=True)
class Page:
    """One page of rows and the cursor of the next page (None on the last page)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True)
class ExecutionFilter:
    """What a listing keeps: every field given must match (tags: the execution has them all).

    ``created_after`` is inclusive and ``created_before`` exclusive (seconds since the epoch);
    ``id_prefix`` is the start of the execution's id, its name.
    """

    project: str | None = None
    domain: str | None = None
    phase: str | None = None
    workflow: str | None = None
    launch_plan: str | None = None
    launched_by: str | None = None
    id_prefix: str | None = None
    tags: tuple[str, ...] = field(default=())
    created_after: float | None = None
    created_before: float | None = None

    def check(self) -> None:
        """Raise :class:`InputError` naming the filter that can match nothing as given."""
        if self.phase is not None and self.phase not in _PHASES:
            raise InputError(f"phase {self.phase!r} is not a phase; use one of {', '.join(_PHASES)}")
        for name in ("project", "domain", "workflow", "launch_plan", "launched_by", "id_prefix"):
            value = getattr(self, name)
            if value is not None and (value == "" or len(value) > 512):
                raise InputError(f"the {name.replace('_', ' ')} filter must be 1 to 512 characters, "
                                 f"not {len(value)}; leave it out to list them all")
        if len(self.tags) > MAX_TAGS:
            raise InputError(f"a listing requires at most {MAX_TAGS} tags, not {len(self.tags)}")
        if any(not tag or len(tag) > 256 for tag in self.tags):
            raise InputError("a tag filter must be 1 to 256 characters")
        for name in ("created_after", "created_before"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise InputError(f"{name.replace('_', ' ')} must be a time in seconds since the epoch, not {value}")
        if (self.created_after is not None and self.created_before is not None
                and self.created_after >= self.created_before):
            raise InputError(f"created after ({self.created_after}) must be before created before "
                             f"({self.created_before}): nothing is in that range")
        if (self.domain is not None or self.tags) and self.project is None:
            raise InputError("give the project too: a domain or a tag filter is within one project")
        if self.tags and self.domain is None:
            raise InputError("give the domain too: a tag filter is within one project and domain")


_PHASES = tuple(p.value for p in Phase)


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
                     limit: int = 20, cursor: str | None = None, *,
                     where: ExecutionFilter | None = None) -> sa.Select[Any]:
    """The statement :func:`list_executions` runs (``limit`` + 1 rows, to know if more follow).

    ``where`` gives every filter; ``project``, ``domain`` and ``phase`` are its common ones.
    """
    where = where or ExecutionFilter(project, domain, phase)
    where.check()
    after = decode_cursor(cursor) if cursor is not None else None
    if where.tags:
        return _by_tags(where, limit, after)
    return _keyset(sa.select(executions), where, ("project", "domain"), executions.c.created, executions.c.id,
                   after, limit)


def _by_tags(where: ExecutionFilter, limit: int, after: tuple[float, str] | None) -> sa.Select[Any]:
    """Driven by the first tag's key, newest first; each other tag is one primary-key probe."""
    first, *others = sorted(set(where.tags))
    t = execution_tags.alias("t")
    query = (sa.select(executions)
             .select_from(t.join(executions, executions.c.id == t.c.execution_id))
             .where(t.c.project == where.project, t.c.domain == where.domain, t.c.tag == first))
    for n, tag in enumerate(others):
        o = execution_tags.alias(f"t{n}")
        query = query.where(sa.exists().where(
            o.c.project == t.c.project, o.c.domain == t.c.domain, o.c.tag == tag,
            o.c.created == t.c.created, o.c.execution_id == t.c.execution_id))
    return _keyset(query, where, (), t.c.created, t.c.execution_id, after, limit)


def _keyset(query: sa.Select[Any], where: ExecutionFilter, tenant: tuple[str, ...], created: Any,
            execution_id: Any, after: tuple[float, str] | None, limit: int) -> sa.Select[Any]:
    """``query`` with the column filters, the time range, the id prefix, the cursor and the
    order: newest first by (``created``, ``execution_id``), the key every index ends in."""
    for column in (*tenant, "phase", "workflow", "launch_plan", "launched_by"):
        value = getattr(where, column)
        if value is not None:
            query = query.where(executions.c[column] == value)
    query = query.where(*_common(where, created, execution_id))
    if after is not None:
        query = query.where(sa.tuple_(created, execution_id) < sa.tuple_(*after))
    return query.order_by(created.desc(), execution_id.desc()).limit(limit + 1)


def _common(where: ExecutionFilter, created: Any, execution_id: Any) -> list[Any]:
    found = []
    if where.created_after is not None:
        found.append(created >= where.created_after)
    if where.created_before is not None:
        found.append(created < where.created_before)
    if where.id_prefix is not None:
        found.append(execution_id.like(escape_like(where.id_prefix) + "%", escape="\\"))
    return found


def escape_like(text: str) -> str:
    """``text`` matched literally by LIKE ... ESCAPE '\\'."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_executions(store: EventStore, project: str | None = None, domain: str | None = None,
                    phase: str | None = None, limit: int = 20, cursor: str | None = None, *,
                    where: ExecutionFilter | None = None) -> Page:
    """Executions newest first (by created, then id) that pass the filters, ``limit`` a page."""
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"a page holds 1 to {MAX_PAGE} executions, not {limit}")
    statement = executions_query(project, domain, phase, limit, cursor, where=where)
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(statement).mappings()]
    if len(rows) <= limit:
        return Page(rows, None)
    last = rows[limit - 1]
    return Page(rows[:limit], encode_cursor(last["created"], last["id"]))


def execution_tags_of(store: EventStore, row: dict[str, Any]) -> list[str]:
    """The tags of the execution ``row`` (its tenant and created time narrow the key)."""
    with store.engine.connect() as conn:
        return sorted(conn.execute(sa.select(execution_tags.c.tag).where(
            execution_tags.c.project == row["project"], execution_tags.c.domain == row["domain"],
            execution_tags.c.created == row["created"], execution_tags.c.execution_id == row["id"])).scalars())
