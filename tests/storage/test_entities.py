"""Registered entities: immutable per (project, domain, kind, name, version), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from plait.model.errors import EntityConflictError, EntityNotFoundError, PlaitError
from plait.storage.entities import EntityStore, RegisterResult
from plait.storage.events import EventStore
from postgres_db import fresh_database

BODY = {"name": "flows.hunt", "nodes": [{"id": "detect", "retries": 2}], "interface": {"photos": "int"}}


@pytest.fixture(params=["sqlite", "postgresql"])
def entities(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EntityStore]:
    if request.param == "sqlite":
        store = EventStore(f"sqlite:///{tmp_path / 'plait.db'}")
        yield EntityStore(store)
        store.close()
    else:
        with fresh_database() as url:
            store = EventStore(url)
            yield EntityStore(store)
            store.close()


def register(entities: EntityStore, version: str = "v1", body: dict[str, Any] = BODY, **key: str) -> RegisterResult:
    where = {"project": "p", "domain": "development", "kind": "workflow", "name": "flows.hunt", **key}
    return entities.register(where["project"], where["domain"], where["kind"], where["name"], version, body)


def test_registering_stores_the_body_under_its_key(entities: EntityStore):
    result = register(entities)
    assert result.created
    got = entities.get("p", "development", "workflow", "flows.hunt", "v1")
    assert got is not None and got.body == BODY and got.digest == result.entity.digest and not got.archived
    assert entities.get("p", "production", "workflow", "flows.hunt", "v1") is None
    assert entities.get("p", "development", "task", "flows.hunt", "v1") is None


def test_registering_identical_content_again_is_a_no_op(entities: EntityStore):
    first = register(entities)
    same_content_other_key_order = dict(reversed(list(BODY.items())))
    again = register(entities, body=same_content_other_key_order)
    assert not again.created
    assert again.entity == first.entity  # the first registration's row, untouched


def test_different_content_under_an_existing_version_is_refused_with_a_diff(entities: EntityStore):
    register(entities)
    changed = {**BODY, "nodes": [{"id": "detect", "retries": 5}]}
    with pytest.raises(EntityConflictError) as refused:
        register(entities, body=changed)
    message = str(refused.value)
    assert "workflow 'flows.hunt' version 'v1' in p/development is already registered" in message
    assert '--- registered v1\n+++ new v1\n' in message
    assert '-      "retries": 2\n+      "retries": 5\n' in message
    assert entities.get("p", "development", "workflow", "flows.hunt", "v1").body == BODY  # type: ignore[union-attr]


def test_versions_are_listed_in_registration_order_without_archived_ones(entities: EntityStore):
    for version in ("v1", "v2", "v3"):
        register(entities, version, {**BODY, "v": version})
    register(entities, "v1", BODY, name="flows.other")
    entities.archive("p", "development", "workflow", "flows.hunt", "v2")
    listed = entities.list_versions("p", "development", "workflow", "flows.hunt")
    assert [e.version for e in listed] == ["v1", "v3"]
    everything = entities.list_versions("p", "development", "workflow", "flows.hunt", include_archived=True)
    assert [(e.version, e.archived) for e in everything] == [("v1", False), ("v2", True), ("v3", False)]
    assert entities.get("p", "development", "workflow", "flows.hunt", "v2").archived  # type: ignore[union-attr]


def test_archiving_a_version_that_was_never_registered_says_so(entities: EntityStore):
    with pytest.raises(EntityNotFoundError, match="no task 'x' version 'v9' in p/d"):
        entities.archive("p", "d", "task", "x", "v9")


def test_an_unknown_kind_is_refused(entities: EntityStore):
    with pytest.raises(PlaitError, match="task, workflow, launch_plan, not 'pipeline'"):
        register(entities, kind="pipeline")


def at_once(workers: int, work: Callable[[int], RegisterResult]) -> tuple[list[RegisterResult], list[BaseException]]:
    start = threading.Barrier(workers)
    results: list[RegisterResult] = []
    errors: list[BaseException] = []

    def run(i: int) -> None:
        start.wait()
        try:
            results.append(work(i))
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results, errors


def test_identical_registrations_at_once_all_succeed_and_one_creates(entities: EntityStore):
    # Each worker registers through its own store, as separate `plait register` processes would.
    stores = [EntityStore(EventStore(entities.store.url)) for _ in range(8)]
    try:
        for n in range(5):
            results, errors = at_once(8, lambda i, n=n: register(stores[i], f"v{n}"))
            assert not errors, f"{len(errors)} of 8 identical registrations failed: {errors[0]!r}"
            assert sorted(r.created for r in results) == [False] * 7 + [True]
    finally:
        for s in stores:
            s.store.close()


def test_conflicting_registrations_at_once_leave_one_winner_and_refuse_the_rest(entities: EntityStore):
    stores = [EntityStore(EventStore(entities.store.url)) for _ in range(6)]
    try:
        results, errors = at_once(6, lambda i: register(stores[i], "v1", {**BODY, "worker": i}))
        assert len(results) == 1 and results[0].created
        assert len(errors) == 5 and all(isinstance(e, EntityConflictError) for e in errors), errors
        stored = entities.get("p", "development", "workflow", "flows.hunt", "v1")
        assert stored is not None and stored.body == results[0].entity.body
    finally:
        for s in stores:
            s.store.close()


def test_activating_the_active_version_again_keeps_its_activation_time(entities: EntityStore):
    """A fixed-rate schedule counts from its activation: registering (and activating) the same
    version again must not move it, or fire times between the two would be skipped."""
    import sqlalchemy as sa
    from plait.storage.entities import active_launch_plans

    def activated() -> tuple[str, float]:
        with entities.engine.connect() as conn:
            row = conn.execute(sa.select(active_launch_plans.c.version, active_launch_plans.c.activated)).one()
        return row.version, row.activated

    for version in ("v1", "v2"):
        entities.register("p", "d", "launch_plan", "lp", version, {"v": version})
    entities.activate("p", "d", "lp", "v1")
    first = activated()
    entities.activate("p", "d", "lp", "v1")
    assert activated() == first
    entities.activate("p", "d", "lp", "v2")
    assert activated()[0] == "v2" and activated()[1] >= first[1]
