"""Lineage queries: who produced and who read a dataset, what an execution touched, its run events.

What the server's routes, the console's dataset pages and programs ask of the store's lineage
(:mod:`plait.storage.lineage`, recorded by the engine: :mod:`plait.engine.lineage`). Every
question about datasets is asked within one project (and optionally one domain): the same
path may be written by two tenants, and one never sees the other's executions.

Every answer is a keyset page of at most ``limit`` rows (:data:`MAX_PAGE`), read from an index
(revision 0005) so the thousandth page costs what the first does: a 100,000-photo run touches
100,000 datasets. The cursor is the key of the page's last row, opaque to the caller.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from plait.model.api.lineage import (
    DatasetLineage,
    DatasetPage,
    DatasetRow,
    DatasetUseOut,
    DatasetUsePage,
    RunEventPage,
)
from plait.model.errors import InputError
from plait.storage.events import EventStore
from plait.storage.lineage import LineageStore, lineage_datasets

MAX_PAGE = 500
"""The most rows one page holds."""

PAGE = 100
"""A page's rows when the caller does not say."""


def run_events(store: EventStore, execution_id: str, limit: int = PAGE, cursor: str | None = None) -> RunEventPage:
    """The execution's OpenLineage run events (two or more per recorded attempt), in order."""
    _check(limit)
    after = int(_decode(cursor, 1)[0]) if cursor else 0
    rows = LineageStore(store).events(execution_id, after, limit + 1)
    more = len(rows) > limit
    return RunEventPage(items=[event for _, event in rows[:limit]],
                        next_cursor=_encode(rows[limit - 1][0]) if more else None)


def datasets(store: EventStore, project: str, domain: str | None = None, limit: int = PAGE,
             cursor: str | None = None, prefix: str | None = None) -> DatasetPage:
    """The datasets the tenant's attempts produced or read whose name starts with ``prefix``, by name."""
    _check(limit)
    if prefix is not None and len(prefix) > 1024:
        raise InputError(f"a dataset name prefix is at most 1024 characters, not {len(prefix)}")
    after = _decode(cursor, 2) if cursor else None
    rows = LineageStore(store).datasets(project, domain, prefix, (str(after[0]), str(after[1])) if after else None, limit)
    more = len(rows) > limit
    return DatasetPage(items=[DatasetRow(**row) for row in rows[:limit]],
                       next_cursor=_encode(rows[limit - 1]["name"], rows[limit - 1]["namespace"]) if more else None)


def dataset_lineage(store: EventStore, project: str, namespace: str, name: str, domain: str | None = None,
                    limit: int = PAGE, cursor: str | None = None) -> DatasetLineage:
    """The attempts of the tenant's executions that produced and that read one dataset, a page of
    ``limit`` of them by execution and attempt (the dataset's primary-key range)."""
    c = lineage_datasets.c
    where = [c.namespace == namespace, c.name == name, c.project == project]
    if domain is not None:
        where.append(c.domain == domain)
    uses, next_cursor = _uses(store, where, ("execution_id", "entity", "direction"), limit, cursor)
    return DatasetLineage(namespace=namespace, name=name, next_cursor=next_cursor,
                          producers=[u for u in uses if u.direction == "produced"],
                          readers=[u for u in uses if u.direction == "read"])


def execution_datasets(store: EventStore, execution_id: str, limit: int = PAGE,
                       cursor: str | None = None) -> DatasetUsePage:
    """The datasets an execution's attempts read or produced, by attempt."""
    uses, next_cursor = _uses(store, [lineage_datasets.c.execution_id == execution_id],
                              ("entity", "direction", "namespace", "name"), limit, cursor)
    return DatasetUsePage(items=uses, next_cursor=next_cursor)


def _uses(store: EventStore, where: list[Any], key: tuple[str, ...], limit: int,
          cursor: str | None) -> tuple[list[DatasetUseOut], str | None]:
    _check(limit)
    after = tuple(str(v) for v in _decode(cursor, len(key))) if cursor else None
    rows = LineageStore(store).uses(*where, key=key, after=after, limit=limit)
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1].model_dump()
    return rows[:limit], _encode(*(last["attempt" if k == "entity" else k] for k in key))


def _check(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"a page holds 1 to {MAX_PAGE} rows, not {limit}")


def _encode(*key: str | int) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _decode(cursor: str, size: int) -> list[str | int]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(key, list) or len(key) != size or not all(isinstance(v, str | int) for v in key):
            raise ValueError
        return key
    except (ValueError, TypeError, binascii.Error):
        raise InputError(f"{cursor!r} is not a cursor of this list; pass the next_cursor the previous page gave") from None
