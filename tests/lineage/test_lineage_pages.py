"""Lineage lists page by cursor, each page a range of an index (SQLite and PostgreSQL stores).

A project's 130 datasets, one dataset 40 attempts read, one execution's 80 dataset uses and 80
run events are paged a few rows at a time: every row comes once, in the list's order, and the
last page says so; a name prefix keeps only the names that start with it. On SQLite, each page's
statement is checked against the query plan: an index range in the list's order, no sort of the
tenant's rows (what makes a 100,000-dataset project's thousandth page cost what the first does).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from plait.model.errors import InputError
from plait.model.lineage import AttemptRun, Dataset, RunRecord
from plait.service.lineage import dataset_lineage, datasets, execution_datasets, run_events
from plait.storage.events import EventStore
from plait.storage.lineage import LineageStore
from postgres_db import fresh_database

SHARED = Dataset("file", "/data/shared.csv", "table", "file")


def recorded(store: EventStore) -> None:
    """In alpha/development, execution x1: 40 attempts each read the shared file and wrote two
    files (/out/NN/a, /out/NN/b); x2 in alpha/staging wrote /staging/NN; beta wrote /out/00/a too."""
    lineage = LineageStore(store)
    for n in range(40):
        run = AttemptRun("x1", "wf", "alpha", "development", "t", "python", f"node{n:02}", 1)
        outputs = tuple(Dataset("file", f"/out/{n:02}/{part}", f"o{i}", "file") for i, part in enumerate("ab"))
        lineage.record(RunRecord(run, "START", float(n), (SHARED,), ()), [(SHARED, "read")])
        lineage.record(RunRecord(run, "COMPLETE", n + 0.5, (SHARED,), outputs), [(d, "produced") for d in outputs])
    for n in range(49):
        run = AttemptRun("x2", "wf", "alpha", "staging", "t", "python", f"node{n:02}", 1)
        made = Dataset("file", f"/staging/{n:02}", "o0", "file")
        lineage.record(RunRecord(run, "COMPLETE", 100.0 + n, (), (made,)), [(made, "produced")])
    beta = AttemptRun("x3", "wf", "beta", "development", "t", "python", "node00", 1)
    mine = Dataset("file", "/out/00/a", "o0", "file")
    lineage.record(RunRecord(beta, "COMPLETE", 1.0, (), (mine,)), [(mine, "produced")])
    lineage.flush()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventStore]:
    if request.param == "sqlite":
        found = EventStore(f"sqlite:///{tmp_path_factory.mktemp('pages') / 'store.db'}")
        recorded(found)
        yield found
    else:
        with fresh_database() as url:
            found = EventStore(url)
            recorded(found)
            yield found
            found.engine.dispose()


def every_page(read: Callable[[str | None], Any], items: Callable[[Any], list[Any]]) -> list[Any]:
    """All rows of a list read a page at a time; each page but the last is full."""
    rows: list[Any] = []
    cursor: str | None = None
    sizes = []
    while True:
        page = read(cursor)
        sizes.append(len(items(page)))
        rows += items(page)
        if page.next_cursor is None:
            assert all(size == sizes[0] for size in sizes[:-1]) and sizes[-1] <= sizes[0], sizes
            return rows
        cursor = page.next_cursor


def test_a_projects_datasets_page_by_name_in_every_domain_or_one(store: EventStore):
    rows = every_page(lambda cursor: datasets(store, "alpha", limit=7, cursor=cursor), lambda p: p.items)
    expected = sorted([f"/out/{n:02}/{p}" for n in range(40) for p in "ab"] + [f"/staging/{n:02}" for n in range(49)]
                      + ["/data/shared.csv"])
    assert [r.name for r in rows] == expected
    shared = next(r for r in rows if r.name == "/data/shared.csv")
    assert (shared.namespace, shared.produced, shared.read, shared.last) == ("file", 0, 40, 39.0)
    assert next(r for r in rows if r.name == "/out/00/a").produced == 1  # beta's use is beta's
    development = every_page(lambda cursor: datasets(store, "alpha", "development", limit=9, cursor=cursor),
                             lambda p: p.items)
    assert [r.name for r in development] == [name for name in expected if not name.startswith("/staging")]


def test_a_name_prefix_keeps_the_names_starting_with_it(store: EventStore):
    found = every_page(lambda cursor: datasets(store, "alpha", limit=3, cursor=cursor, prefix="/out/1"),
                       lambda p: p.items)
    assert [r.name for r in found] == [f"/out/{n}/{p}" for n in range(10, 20) for p in "ab"]
    assert datasets(store, "alpha", prefix="/out/1").model_dump() == {"items": [r.model_dump() for r in found],
                                                                     "next_cursor": None}
    assert [r.name for r in datasets(store, "alpha", prefix="/out/39/").items] == ["/out/39/a", "/out/39/b"]
    assert datasets(store, "alpha", prefix="/outside").items == []


def test_an_executions_run_events_and_dataset_uses_page_in_order(store: EventStore):
    events = every_page(lambda cursor: run_events(store, "x1", limit=6, cursor=cursor), lambda p: p.items)
    assert [(e["run"]["facets"]["plait"]["node"], e["eventType"]) for e in events] == [
        (f"node{n:02}", kind) for n in range(40) for kind in ("START", "COMPLETE")]
    uses = every_page(lambda cursor: execution_datasets(store, "x1", limit=11, cursor=cursor), lambda p: p.items)
    assert [(u.attempt, u.direction, u.name) for u in uses] == sorted(
        [(f"node{n:02}/1", "produced", f"/out/{n:02}/{p}") for n in range(40) for p in "ab"]
        + [(f"node{n:02}/1", "read", "/data/shared.csv") for n in range(40)])


def test_a_datasets_producers_and_readers_page_by_execution_and_attempt(store: EventStore):
    readers = every_page(lambda cursor: dataset_lineage(store, "alpha", "file", "/data/shared.csv", limit=8,
                                                        cursor=cursor), lambda p: p.readers + p.producers)
    assert [(u.execution_id, u.attempt, u.direction) for u in readers] == [
        ("x1", f"node{n:02}/1", "read") for n in range(40)]


def test_a_bad_cursor_or_limit_is_refused_naming_it(store: EventStore):
    with pytest.raises(InputError, match="'nonsense' is not a cursor of this list"):
        datasets(store, "alpha", cursor="nonsense")
    with pytest.raises(InputError, match="is not a cursor"):  # a cursor of another list
        run_events(store, "x1", cursor=datasets(store, "alpha", limit=1).next_cursor)
    with pytest.raises(InputError, match="a page holds 1 to 500 rows, not 501"):
        execution_datasets(store, "x1", limit=501)


def test_each_page_is_a_range_of_an_index_in_the_lists_order(tmp_path: Path):
    store = EventStore(f"sqlite:///{tmp_path / 'plans.db'}")
    recorded(store)
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    sa.event.listen(store.engine, "before_cursor_execute", seen)
    plans = {}
    for name, read in {
        "datasets": lambda: datasets(store, "alpha", limit=2, cursor=datasets(store, "alpha", limit=2).next_cursor),
        "prefix": lambda: datasets(store, "alpha", "development", limit=2, prefix="/out/1"),
        "events": lambda: run_events(store, "x1", limit=2, cursor=run_events(store, "x1", limit=2).next_cursor),
        "uses": lambda: execution_datasets(store, "x1", limit=2,
                                           cursor=execution_datasets(store, "x1", limit=2).next_cursor),
        "lineage": lambda: dataset_lineage(store, "alpha", "file", "/data/shared.csv", limit=2,
                                           cursor=dataset_lineage(store, "alpha", "file", "/data/shared.csv",
                                                                  limit=2).next_cursor),
    }.items():
        statements.clear()
        read()
        statement, parameters = statements[-1]
        with store.engine.connect() as conn:
            plans[name] = " | ".join(row[-1] for row in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement, parameters))
    sa.event.remove(store.engine, "before_cursor_execute", seen)
    expected = {"datasets": r"SEARCH .* USING COVERING INDEX ix_lineage_datasets_tenant \(project=\? AND \(name,namespace\)>",
                "prefix": r"SEARCH .* USING COVERING INDEX ix_lineage_datasets_tenant \(project=\? AND name>\? AND name<\?\)",
                "events": r"SEARCH .* USING INDEX ix_lineage_events_execution \(execution_id=\? AND seq>\?\)",
                "uses": r"SEARCH .* USING INDEX ix_lineage_datasets_execution \(execution_id=\? AND \(entity,",
                "lineage": r"SEARCH .* USING INDEX sqlite_autoindex_lineage_datasets_1 \(namespace=\? AND name=\? AND "
                           r"\(execution_id,"}
    for name, plan in plans.items():
        assert re.search(expected[name], plan) and "TEMP B-TREE" not in plan, (name, plan)
