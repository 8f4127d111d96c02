"""``plait executions list``: newest first, per tenant, keyset pages behind an opaque cursor."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from plait.model.errors import InputError
from plait.service.query import ExecutionFilter, encode_cursor, executions_query, list_executions
from plait.storage.events import EventStore, execution_tags, executions
from postgres_db import fresh_database

TENANTS = [("analytics", "production"), ("analytics", "development"), ("vision", "production")]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    if request.param == "sqlite":
        s = EventStore(f"sqlite:///{tmp_path / 'plait.db'}")
        yield s
        s.close()
    else:
        with fresh_database() as url:
            s = EventStore(url)
            yield s
            s.close()


def add_executions(store: EventStore, count: int = 250) -> list[dict[str, Any]]:
    """``count`` rows over three tenants (two share a project, two a domain); every six share a
    created time, two of them in each tenant, so ids break ties."""
    rows = [dict(id=f"x{i:04d}", workflow="flows.hunt", version="v1", project=TENANTS[i % 3][0],
                 domain=TENANTS[i % 3][1], created=1_700_000_000.125 + i // 6, updated=0.0,
                 phase="succeeded" if i % 5 else "failed") for i in range(count)]
    with store.engine.begin() as conn:
        conn.execute(executions.insert(), rows)
    return rows


def newest_first(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in sorted(rows, key=lambda r: (r["created"], r["id"]), reverse=True)]


def page_through(store: EventStore, limit: int = 37, **filters: str) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        page = list_executions(store, limit=limit, cursor=cursor, **filters)
        assert len(page.items) <= limit
        seen += [r["id"] for r in page.items]
        if page.next_cursor is None:
            return seen
        assert len(page.items) == limit
        cursor = page.next_cursor


def test_paging_through_all_executions_shows_each_once_newest_first(store: EventStore):
    rows = add_executions(store)
    assert page_through(store) == newest_first(rows)


def test_paging_through_one_tenant_shows_exactly_its_executions(store: EventStore):
    rows = add_executions(store)
    for project, domain in TENANTS:
        mine = [r for r in rows if (r["project"], r["domain"]) == (project, domain)]
        assert page_through(store, project=project, domain=domain) == newest_first(mine)


def test_paging_by_phase_shows_exactly_that_phase(store: EventStore):
    rows = add_executions(store)
    failed = [r for r in rows if r["phase"] == "failed" and (r["project"], r["domain"]) == TENANTS[2]]
    assert len(failed) == 17
    assert page_through(store, limit=7, project="vision", domain="production", phase="failed") == newest_first(failed)


def test_the_last_full_page_has_no_next_cursor(store: EventStore):
    add_executions(store, 74)
    first = list_executions(store, limit=37)
    second = list_executions(store, limit=37, cursor=first.next_cursor)
    assert first.next_cursor is not None and len(second.items) == 37 and second.next_cursor is None


def test_executions_created_while_paging_do_not_shift_the_pages(store: EventStore):
    rows = add_executions(store, 40)
    first = list_executions(store, limit=10)
    add_executions_after = [dict(rows[0], id=f"new{i}", created=2_000_000_000.0 + i) for i in range(5)]
    with store.engine.begin() as conn:
        conn.execute(executions.insert(), add_executions_after)
    second = list_executions(store, limit=10, cursor=first.next_cursor)
    assert [r["id"] for r in first.items + second.items] == newest_first(rows)[:20]


def test_a_cursor_that_is_not_one_is_refused():
    for bad in ("not-a-cursor", encode_cursor(1.0, "x")[:-3], "WzEuMF0"):
        with pytest.raises(InputError, match="is not a cursor of `plait executions list`"):
            executions_query(cursor=bad)


def plan(store: EventStore, query: sa.Select[Any]) -> str:
    sql = str(query.compile(store.engine, compile_kwargs={"literal_binds": True}))
    with store.engine.begin() as conn:
        if store.engine.dialect.name == "sqlite":
            return "\n".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
        # Statistics now, not whenever autovacuum gets to them: without them the planner's pick
        # between the two tenant indexes depended on timing.
        conn.exec_driver_sql("ANALYZE executions")
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a small table: make the index's cost visible
        conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")  # ... and read it in order, as a big one is
        conn.exec_driver_sql("SET LOCAL enable_hashjoin = off")  # ... and join a page's rows by key, as there
        conn.exec_driver_sql("SET LOCAL enable_mergejoin = off")
        return "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql))


def test_a_tenants_page_is_read_from_the_tenant_index(store: EventStore):
    add_executions(store)
    cursor = encode_cursor(1_700_000_050.125, "x0150")
    text = plan(store, executions_query("analytics", "production", limit=37, cursor=cursor))
    if store.engine.dialect.name == "sqlite":
        assert "USING INDEX ix_executions_tenant (project=? AND domain=? AND (created,id)<(?,?))" in text, text
        assert "TEMP B-TREE" not in text, text  # the index's order is the page's order: no sort
    else:
        assert re.search(r"Index Scan Backward using ix_executions_tenant on executions", text), text
        assert "Sort" not in text, text


def test_a_tenants_page_of_one_phase_is_read_from_the_phase_index(store: EventStore):
    add_executions(store)
    text = plan(store, executions_query("analytics", "production", "failed", limit=37,
                                        cursor=encode_cursor(1_700_000_050.125, "x0150")))
    if store.engine.dialect.name == "sqlite":
        assert "USING INDEX ix_executions_tenant_phase (project=? AND domain=? AND phase=? AND (created,id)<(?,?))" in text, text
        assert "TEMP B-TREE" not in text, text
    else:
        assert re.search(r"Index Scan Backward using ix_executions_tenant_phase on executions", text), text
        assert "Sort" not in text, text


def test_the_cli_prints_the_next_cursor_and_shows_the_next_page_with_it(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'plait.db'}"
    store = EventStore(url)
    rows = add_executions(store, 9)
    store.close()
    env = {**os.environ, "PLAIT_DB_URL": url, "COLUMNS": "200"}

    def plait_list(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "plait.cli", "executions", "list", *args],
                                capture_output=True, text=True, env=env, timeout=60, check=True)
        return result.stdout

    mine = newest_first([r for r in rows if (r["project"], r["domain"]) == TENANTS[0]])
    first = plait_list("--project", "analytics", "--domain", "production", "--limit", "2")
    assert re.findall(r"x\d{4}", first) == mine[:2]
    cursor = re.search(r"next page: --cursor (\S+)", first)
    assert cursor, first
    second = plait_list("--project", "analytics", "--domain", "production", "--limit", "2", "--cursor", cursor[1])
    assert re.findall(r"x\d{4}", second) == mine[2:3]
    assert "next page" not in second


FILTER_INDEXES = [  # (filter, the index its page is read from on SQLite, on PostgreSQL)
    (dict(workflow="flows.hunt"), "ix_executions_workflow", "ix_executions_workflow"),
    (dict(launch_plan="nightly"), "ix_executions_launch_plan", "ix_executions_launch_plan"),
    (dict(launched_by="alice"), "ix_executions_launched_by", "ix_executions_launched_by"),
    (dict(tags=("gpu",)), "sqlite_autoindex_execution_tags_1", "pk_execution_tags"),
    (dict(created_after=1_700_000_010.0, created_before=1_700_000_040.0), "ix_executions_tenant", "ix_executions_tenant"),
]


@pytest.mark.parametrize("filters,sqlite_index,pg_index", FILTER_INDEXES, ids=lambda v: str(v)[:30])
def test_each_filters_page_is_read_from_its_index_in_order(store: EventStore, filters: dict[str, Any],
                                                           sqlite_index: str, pg_index: str):
    rows = add_executions(store)
    with store.engine.begin() as conn:
        # each filter's value on one row in five, so that its own index is the selective one
        for i, r in enumerate(rows):
            other = f"other{i % 5}" if i % 5 else None
            conn.execute(executions.update().where(executions.c.id == r["id"]).values(
                workflow=other or "flows.hunt", launch_plan=other or "nightly", launched_by=other or "alice"))
        conn.execute(execution_tags.insert(), [dict(project=r["project"], domain=r["domain"], tag="gpu",
                                                    created=r["created"], execution_id=r["id"]) for r in rows[::5]])
        if store.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE execution_tags")
    where = ExecutionFilter(project="analytics", domain="production", **filters)
    text = plan(store, executions_query(limit=37, cursor=encode_cursor(1_700_000_050.125, "x0150"), where=where))
    if store.engine.dialect.name == "sqlite":
        assert f"INDEX {sqlite_index} (project=? AND domain=?" in text, text
        assert "TEMP B-TREE" not in text and "SCAN executions" not in text, text
    else:
        assert re.search(rf"Index (Only )?Scan Backward using {pg_index} on", text), text
        assert "Sort" not in text and "Seq Scan" not in text, text


def test_filters_that_can_match_nothing_are_refused_naming_the_filter():
    for where, says in [(ExecutionFilter(phase="exploded"), "phase 'exploded' is not a phase"),
                        (ExecutionFilter(created_after=5, created_before=5), "nothing is in that range"),
                        (ExecutionFilter(project="a", tags=("x",)), "give the domain too"),
                        (ExecutionFilter(project="a", domain="d", tags=tuple("abcdefghi")), "at most 8 tags"),
                        (ExecutionFilter(workflow=""), "workflow filter must be 1 to 512")]:
        with pytest.raises(InputError, match=re.escape(says)):
            executions_query(where=where)
