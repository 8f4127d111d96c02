"""What the workflow and execution pages read from the store, shaped for drawing.

A page must stay light whatever the execution's size: a map of 100,000 items records hundreds
of thousands of ``item`` events, so nothing here replays them. The execution's state comes
from its other events (one per node and attempt change); a map node's counts per phase are
counted by the database (each item's latest event), and its items are read a page at a time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fastapi import Request
from plait.model.events import Event
from plait.model.spec import Binding, WorkflowSpec
from plait.model.status import Phase
from plait.service.remote_launch import LAUNCH_KEY
from plait.storage.events import EventStore, ExecutionState, events

ITEMS_PAGE = 100
"""A map node's items shown at a time."""


def event_store(request: Request) -> EventStore:
    """The server's store, which every page reads."""
    store: EventStore = request.app.state.store
    return store


def graph_of(spec: WorkflowSpec, prefix: str = "") -> dict[str, Any]:
    """The nodes and edges of ``spec`` for graph.js: a sub-workflow's nodes nested under its
    node (``children``), a dynamic node with children only once it has run.

    Compact, since a page of a thousand nodes carries it: a node's ``label`` (its id without
    ``prefix``) and ``kind`` (``task``) are left out, and an edge is a pair of node indices.
    """
    nodes: list[dict[str, Any]] = []
    for node in spec.nodes:
        path = prefix + node.id
        entry: dict[str, Any] = {"id": path, "ref": node.workflow if node.kind == "workflow" else node.task}
        if node.kind != "task":
            entry["kind"] = node.kind
        if node.kind == "workflow" and node.workflow in spec.subworkflows:
            entry["children"] = graph_of(spec.subworkflows[node.workflow], path + ".")
        elif node.task is not None and spec.tasks[node.task].dynamic:
            entry["kind"] = "dynamic"
            entry["children"] = {"nodes": [], "edges": []}
        nodes.append(entry)
    index = {node.id: i for i, node in enumerate(spec.nodes)}
    edges = [[index[up], index[node.id]] for node in spec.nodes for up in sorted(node.upstream()) if up in index]
    return {"nodes": nodes, "edges": edges}


def _event(row: Any) -> Event:
    return Event(row.execution_id, row.kind, row.entity, Phase(row.phase), json.loads(row.data), row.ts, row.run)


def state_without_items(store: EventStore, execution_id: str) -> tuple[ExecutionState, int, dict[str, list[float]]]:
    """The execution's state from every event but map items', the last seq read (a live stream
    resumes after it), and each task attempt's times: [first, last, seconds waiting for tokens]."""
    store.flush()
    state = ExecutionState(execution_id)
    last = 0
    times: dict[str, list[float]] = {}
    waiting_since: dict[str, float] = {}
    with store.engine.connect() as conn:
        last = conn.execute(sa.select(sa.func.max(events.c.seq)).where(
            events.c.execution_id == execution_id)).scalar() or 0
        rows = conn.execute(sa.select(events).where(events.c.execution_id == execution_id, events.c.kind != "item",
                                                    events.c.seq <= last).order_by(events.c.seq))
        for row in rows:
            event = _event(row)
            state.apply(event)
            if event.kind == "attempt":
                span = times.setdefault(event.entity, [event.ts, event.ts, 0.0])
                span[1] = event.ts
                started = waiting_since.pop(event.entity, None)
                if started is not None:
                    span[2] += event.ts - started
                if event.phase == "waiting_for_resources":
                    waiting_since[event.entity] = event.ts
    return state, last, times


def _index(store: EventStore) -> Any:
    """A map item's index in an event's JSON data, as the database reads it."""
    if store.engine.dialect.name == "postgresql":
        return sa.cast(sa.cast(events.c.data, sa.JSON)["index"].as_string(), sa.Integer)
    return sa.func.json_extract(events.c.data, "$.index")


def _items_of(node: str) -> Any:
    """The map node's item events (entity ``NODE[I]``), by a LIKE with ``node`` escaped."""
    like = node.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "[%"
    return events.c.entity.like(like, escape="\\")


def _latest_per_item(store: EventStore, execution_id: str, node: str) -> Any:
    """The seq of each item's latest event (a retried item: its latest attempt's)."""
    index = _index(store).label("item")
    return (sa.select(index, sa.func.max(events.c.seq).label("seq"))
            .where(events.c.execution_id == execution_id, events.c.kind == "item", _items_of(node))
            .group_by(index))


def item_counts(store: EventStore, execution_id: str, node: str) -> dict[str, int]:
    """How many of the map node's items are in each phase, counted by the database."""
    latest = _latest_per_item(store, execution_id, node).subquery()
    query = (sa.select(events.c.phase, sa.func.count())
             .select_from(latest.join(events, events.c.seq == latest.c.seq)).group_by(events.c.phase))
    with store.engine.connect() as conn:
        return {phase: count for phase, count in conn.execute(query).all()}


@dataclass(frozen=True)
class Item:
    """One map item as its latest event left it."""

    index: int
    phase: str
    attempt: int
    message: str


def items_page(store: EventStore, execution_id: str, node: str, first: int,
               phase: str | None = None) -> list[Item]:
    """Up to :data:`ITEMS_PAGE` of the map node's started items from index ``first`` on (in
    ``phase`` only, if given), in index order."""
    latest = _latest_per_item(store, execution_id, node).subquery()
    query = (sa.select(latest.c.item, events.c.phase, events.c.data)
             .select_from(latest.join(events, events.c.seq == latest.c.seq))
             .where(latest.c.item >= first).order_by(latest.c.item).limit(ITEMS_PAGE))
    if phase:
        query = query.where(events.c.phase == phase)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    found = []
    for index, item_phase, text in rows:
        data = json.loads(text)
        found.append(Item(int(index), item_phase, int(data.get("attempt", 0)), str(data.get("message", ""))))
    return found


def resolve(binding: Binding, inputs: dict[str, Any], state: ExecutionState, prefix: str) -> Any:
    """The value a node input was given, from the workflow's inputs and its upstream nodes'
    outputs; None where those are not known (yet)."""
    if binding.kind == "value":
        return binding.value
    if binding.kind == "list":
        return [resolve(b, inputs, state, prefix) for b in binding.items]
    if not binding.node:
        return inputs.get(binding.output or "")
    upstream = state.nodes.get(prefix + binding.node)
    outputs = (upstream.outputs or {}) if upstream else {}
    return outputs.get(binding.output or "")


def spec_at(spec: WorkflowSpec, path: str) -> tuple[WorkflowSpec, str, str] | None:
    """The (sub-)workflow holding node ``path``, the prefix of its nodes' paths, and the node's
    own id; None for a node inside a dynamic node (its graph is made at run time)."""
    prefix = ""
    current = spec
    parts = path.split(".")
    for part in parts[:-1]:
        node = next((n for n in current.nodes if n.id == part), None)
        if node is None or node.kind != "workflow" or node.workflow not in current.subworkflows:
            return None
        current = current.subworkflows[node.workflow]
        prefix += part + "."
    if not any(n.id == parts[-1] for n in current.nodes):
        return None
    return current, prefix, parts[-1]


def launch_records(store: EventStore, execution_ids: list[str]) -> dict[str, dict[str, Any]]:
    """How each execution was launched, as its queued event records it (the registered
    workflow version, a relaunch's or a recovery's origin); none for a run of local code."""
    if not execution_ids:
        return {}
    query = (sa.select(events.c.execution_id, events.c.data)
             .where(events.c.execution_id.in_(execution_ids), events.c.kind == "execution",
                    events.c.entity == "", events.c.phase == Phase.QUEUED.value).order_by(events.c.seq))
    found: dict[str, dict[str, Any]] = {}
    with store.engine.connect() as conn:
        for xid, data in conn.execute(query):
            record = json.loads(data).get(LAUNCH_KEY)
            if isinstance(record, dict):
                found.setdefault(xid, record)
    return found


def item_span(store: EventStore, execution_id: str, node: str) -> tuple[float, float] | None:
    """The map node's first item event and its last, by the database (None before any): a map
    drawn as one bar."""
    query = sa.select(sa.func.min(events.c.ts), sa.func.max(events.c.ts)).where(
        events.c.execution_id == execution_id, events.c.kind == "item", _items_of(node))
    with store.engine.connect() as conn:
        first, last = conn.execute(query).one()
    return None if first is None else (float(first), float(last))
