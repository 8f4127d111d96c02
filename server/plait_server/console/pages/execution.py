"""One execution: its graph with live phases, a timeline of its attempts, a panel per node
(inputs, outputs, attempts with their errors and logs, time waiting for tokens), a map node's
items a page at a time, and the buttons that abort or recover it.

Every route looks the execution up through the API's :func:`visible_execution`, so an id of a
project the user has no role in is answered 404 as if it did not exist.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from plait.model.errors import PlaitError
from plait.model.spec import WorkflowSpec
from plait.service.logs import find_attempt, read_logs
from plait.service.remote_launch import recover
from plait.storage.access import role_at_least
from plait.storage.blobs import BlobStore
from plait.storage.events import ENDED, EventStore, ExecutionState, events
from plait.storage.queue import ExecutionQueue
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from plait_server.console import ConsoleUser, CsrfChecked, allowed, render
from plait_server.console.execution_data import (
    ITEMS_PAGE,
    event_store,
    graph_of,
    item_counts,
    item_span,
    items_page,
    launch_records,
    resolve,
    spec_at,
    state_without_items,
)
from plait_server.console.pages.executions import when
from plait_server.console.values import shown_value
from plait_server.routes.executions import visible_execution

router = APIRouter(include_in_schema=False)

LOG_TAIL = 200
"""Lines of each log stream shown inline (the download has all of it)."""


def _links(xid: str, node: str) -> dict[str, str]:
    """Where a node's items, logs and values are read from."""
    x, n = quote(xid, safe=""), quote(node, safe="")
    return {part: f"/executions/{x}/{part}/{n}" for part in ("nodes", "items", "log", "logfile", "value")}


def _viewed(request: Request, user: Any, execution_id: str, needed: str = "viewer") -> tuple[dict[str, Any], str]:
    """The execution's row and the user's role in its project (404 without one)."""
    row = visible_execution(request, user, execution_id, needed)
    return row, allowed(request, user, row["project"], needed).role


def _with_phases(graph: dict[str, Any], state: ExecutionState, store: EventStore, xid: str) -> dict[str, Any]:
    """``graph`` with each node's phase; a map's counts per phase, a dynamic node's nodes."""
    for node in graph["nodes"]:
        found = state.nodes.get(node["id"])
        node["phase"] = found.phase if found else "not_started"
        if node.get("kind") == "map" and found is not None:
            node["items"] = found.items
            node["counts"] = item_counts(store, xid, node["id"])
        if node.get("kind") == "dynamic":
            prefix = node["id"] + "."
            node["children"]["nodes"] = [
                {"id": path, "label": path.removeprefix(prefix), "kind": "map" if child.items is not None else "task",
                 "phase": child.phase}
                for path, child in state.nodes.items() if path.startswith(prefix)]
        elif "children" in node:
            _with_phases(node["children"], state, store, xid)
    return graph


def _actions(row: dict[str, Any], phase: str, role: str) -> dict[str, bool]:
    launcher = role_at_least(role, "launcher")
    return {"abort": launcher and phase not in ENDED, "recover": launcher and phase in ("failed", "aborted", "timed_out"),
            "relaunch": launcher and phase in ENDED}


def _timeline(state: ExecutionState, times: dict[str, list[float]], created: float,
              maps: dict[str, tuple[float, float, dict[str, int]]]) -> dict[str, Any]:
    """Each task attempt as a bar from its first event to its last, from the first attempt's
    start; a map node as one bar from its first item's event to its last, with its counts
    (``maps``: its items are not drawn one by one)."""
    spans = [(node.node, attempt.number, attempt.phase, times[attempt.attempt_id]) for node in state.nodes.values()
             for attempt in node.attempts if attempt.attempt_id in times]
    spans += [(node, 0, state.nodes[node].phase if node in state.nodes else "running", [first, last, 0.0])
              for node, (first, last, _counts) in maps.items()]
    origin = min([span[0] for *_, span in spans], default=created)
    bars = sorted(({"node": node, "number": number, "phase": phase, "start": span[0] - origin,
                    "end": span[1] - origin, "waited": span[2],
                    "counts": maps[node][2] if number == 0 else None} for node, number, phase, span in spans),
                  key=lambda b: (b["start"], b["node"]))
    total = max([span[1] - origin for *_, span in spans] + [1.0])  # a second at least: a blink is not drawn as a long bar
    return {"bars": bars, "total": total, "queued": origin - created}


def _map_spans(store: EventStore, state: ExecutionState) -> dict[str, tuple[float, float, dict[str, int]]]:
    """Each started map node's first and last item event and its items' counts per phase."""
    spans = {}
    for node in state.nodes.values():
        span = item_span(store, state.execution_id, node.node) if node.items is not None else None
        if span is not None:
            spans[node.node] = (*span, item_counts(store, state.execution_id, node.node))
    return spans


@router.get("/executions/{execution_id}")
def execution(request: Request, user: ConsoleUser, execution_id: str) -> Response:
    row, role = _viewed(request, user, execution_id)
    store = event_store(request)
    spec = store.spec(row["version"])
    state, last, times = state_without_items(store, row["id"])
    graph = _with_phases(graph_of(spec), state, store, row["id"])
    xid = quote(row["id"], safe="")
    return render(request, "execution.html", user=user, project=row["project"], domain=row["domain"],
                  nav="executions", row=row, created=when(row["created"]), state=state, phase=state.phase,
                  launch=launch_records(store, [row["id"]]).get(row["id"]),
                  graph=graph, events_url=f"/executions/{xid}/live?after={last}",
                  panel_url=f"/executions/{xid}/nodes/", counts_url=f"/executions/{xid}/counts/",
                  actions=_actions(row, state.phase, role),
                  timeline=_timeline(state, times, row["created"], _map_spans(store, state)))


@router.get("/executions/{execution_id}/summary")
def summary(request: Request, user: ConsoleUser, execution_id: str) -> Response:
    """The buttons and the timeline again: the page reloads them when the execution ends."""
    row, role = _viewed(request, user, execution_id)
    store = event_store(request)
    state, _last, times = state_without_items(store, row["id"])
    return render(request, "execution_summary.html", row=row, phase=state.phase, state=state,
                  actions=_actions(row, state.phase, role),
                  timeline=_timeline(state, times, row["created"], _map_spans(store, state)))


@router.get("/executions/{execution_id}/counts/{node:path}")
def counts(request: Request, user: ConsoleUser, execution_id: str, node: str) -> Response:
    row, _role = _viewed(request, user, execution_id)
    return JSONResponse(item_counts(event_store(request), row["id"], node))


@router.get("/executions/{execution_id}/nodes/{node:path}")
def node_panel(request: Request, user: ConsoleUser, execution_id: str, node: str) -> Response:
    """A node's panel: its inputs and outputs, its attempts with errors and logs, a map's items."""
    row, _role = _viewed(request, user, execution_id)
    store = event_store(request)
    state, _last, times = state_without_items(store, row["id"])
    spec = store.spec(row["version"])
    found = state.nodes.get(node)
    where = spec_at(spec, node)
    if found is None and where is None:
        raise HTTPException(404, f"execution {row['id']} has no node {node!r}")
    links = _links(row["id"], node)
    values = _values(where, state, node, links, request.app.state.blobs) if where else {"inputs": [], "outputs": []}
    attempts = []
    for attempt in found.attempts if found else []:
        span = times.get(attempt.attempt_id, [0.0, 0.0, 0.0])
        attempts.append({"number": attempt.number, "phase": attempt.phase, "message": attempt.message,
                         "error_kind": attempt.error_kind, "waited": span[2], "took": span[1] - span[0],
                         "pools": _pools(store, row["id"], attempt.attempt_id),
                         "log": _log(store, row["id"], node, attempt.number, blobs=request.app.state.blobs,
                                     link_url=links["logfile"] + f"?attempt={attempt.number}&stream=")
                         if attempt.phase != "queued" else None,
                         "log_url": links["log"] + f"?attempt={attempt.number}"})
    is_map = found is not None and found.items is not None
    return render(request, "execution_node.html", row=row, node=node, found=found, values=values,
                  attempts=attempts, is_map=is_map, links=links,
                  counts=item_counts(store, row["id"], node) if is_map else {},
                  items=items_page(store, row["id"], node, 0) if is_map else [], page_size=ITEMS_PAGE)


@router.get("/executions/{execution_id}/items/{node:path}")
def node_items(request: Request, user: ConsoleUser, execution_id: str, node: str, first: int = 0,
               phase: str = "") -> Response:
    """A page of a map node's items from index ``first`` (in ``phase`` only, if given)."""
    row, _role = _viewed(request, user, execution_id)
    links = _links(row["id"], node)
    return render(request, "execution_items.html", links=links, first=max(first, 0), phase=phase,
                  items=items_page(event_store(request), row["id"], node, max(first, 0), phase or None),
                  page_size=ITEMS_PAGE)


def _values(where: tuple[WorkflowSpec, str, str], state: ExecutionState, path: str,
            links: dict[str, str], blobs: BlobStore) -> dict[str, list[dict[str, Any]]]:
    sub, prefix, node_id = where
    node = sub.node(node_id)
    found = state.nodes.get(path)
    in_types = sub.node_inputs(node)
    out_types = sub.node_outputs(node)
    inputs = [shown_value(name, in_types.get(name), resolve(b, state.inputs, state, prefix), blobs,
                          links["value"] + f"?side=inputs&name={quote(name)}")
              for name, b in node.inputs.items()]
    outputs = [shown_value(name, out_types.get(name), value, blobs, links["value"] + f"?side=outputs&name={quote(name)}")
               for name, value in ((found.outputs or {}) if found else {}).items()]
    return {"inputs": inputs, "outputs": outputs}


def _pools(store: EventStore, xid: str, attempt_id: str) -> str:
    """The pools the attempt held tokens of, from its waiting events (``pool``, ``pool``)."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(events.c.data).where(
            events.c.execution_id == xid, events.c.entity == attempt_id,
            events.c.kind == "attempt")).scalars().all()
    pools: set[str] = set()
    for text in rows:
        pools.update((json.loads(text).get("pools") or {}).keys())
    return ", ".join(sorted(pools))


def _log(store: EventStore, xid: str, node: str, number: int, item: int | None = None,
         tail: int | None = LOG_TAIL, blobs: BlobStore | None = None, link_url: str = "") -> dict[str, Any]:
    """An attempt's log read now, or why there is none; a link part (something kept that is not
    log text: a notebook) with ``href``: ``link_url`` + its stream for an address in ``blobs``,
    the address itself for an http(s) one, else none (shown as text)."""
    try:
        ref = find_attempt(store, xid, node, attempt=number, item=item)
        parts = read_logs(store, ref, tail)
    except PlaitError as exc:
        return {"texts": [], "links": [], "note": str(exc)}
    links = [{"stream": p.stream, "source": p.source,
              "href": link_url + quote(p.stream) if blobs is not None and blobs.inside(p.source)
              else p.source if p.source.startswith(("http://", "https://")) else None}
             for p in parts if p.kind == "link"]
    return {"texts": [p for p in parts if p.kind != "link"], "links": links, "note": None}


@router.get("/executions/{execution_id}/log/{node:path}")
def node_log(request: Request, user: ConsoleUser, execution_id: str, node: str, attempt: int | None = None,
             item: int | None = None) -> Response:
    """An attempt's whole log, as a text file to save."""
    row, _role = _viewed(request, user, execution_id)
    found = _log(event_store(request), row["id"], node, attempt or 1, item, tail=None)
    if found["note"] and not found["texts"]:
        raise HTTPException(404, found["note"])
    text = "".join(f"==> {p.stream} ({p.source}) <==\n{p.text}\n" for p in found["texts"])
    name = f"{row['id']}-{node}{'' if item is None else f'-{item}'}-{attempt or 1}.log".replace("/", "_")
    return PlainTextResponse(text, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/executions/{execution_id}/logfile/{node:path}")
def node_log_file(request: Request, user: ConsoleUser, execution_id: str, node: str, stream: str,
                  attempt: int | None = None, item: int | None = None) -> Response:
    """A file an attempt's log links to (a notebook), from the server's blob store after the
    role check; only an address the attempt's own log names, inside the store."""
    row, _role = _viewed(request, user, execution_id)
    try:
        ref = find_attempt(event_store(request), row["id"], node, attempt=attempt or 1, item=item)
    except PlaitError as exc:
        raise HTTPException(404, str(exc)) from None
    blobs: BlobStore = request.app.state.blobs
    address = ref.logs.get(stream)
    path = blobs.inside(address) if address else None
    if path is None or not blobs.fs.isfile(path):
        raise HTTPException(404, f"{ref.label} has no {stream!r} file in this server's blob store")
    return _download(blobs, path)


def _download(blobs: BlobStore, path: str) -> Response:
    """The blob store's file at ``path`` as an attachment, read a chunk at a time."""
    filename = path.rsplit("/", 1)[-1].replace('"', "")

    def chunks() -> Iterator[bytes]:
        with blobs.fs.open(path, "rb") as fh:
            while chunk := fh.read(1 << 16):
                yield chunk

    return StreamingResponse(chunks(), media_type="application/octet-stream",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/executions/{execution_id}/value/{node:path}")
def node_value(request: Request, user: ConsoleUser, execution_id: str, node: str, side: str, name: str) -> Response:
    """A node's file, data frame or large value, streamed from the blob store after the role
    check; only a blob the execution's own value names, inside the server's blob store."""
    row, _role = _viewed(request, user, execution_id)
    store = event_store(request)
    state, _last, _times = state_without_items(store, row["id"])
    spec = store.spec(row["version"])
    where = spec_at(spec, node)
    found = state.nodes.get(node)
    if where is None or side not in ("inputs", "outputs"):
        raise HTTPException(404, f"execution {row['id']} has no node {node!r} with {side}")
    sub, prefix, node_id = where
    if side == "inputs":
        binding = sub.node(node_id).inputs.get(name)
        value = resolve(binding, state.inputs, state, prefix) if binding else None
    else:
        value = ((found.outputs or {}) if found else {}).get(name)
    blobs: BlobStore = request.app.state.blobs
    uri = value.get("uri") or value.get("$ref") if isinstance(value, dict) else None
    path = blobs.inside(uri) if isinstance(uri, str) else None
    if path is None:
        raise HTTPException(404, f"{side} {name!r} of node {node} is not a file in this server's blob store")
    if not blobs.fs.isfile(path):
        raise HTTPException(404, f"{side} {name!r} of node {node} is a directory or is gone from the blob store")
    return _download(blobs, path)


@router.post("/executions/{execution_id}/abort")
def abort(request: Request, user: CsrfChecked, execution_id: str) -> Response:
    row, _role = _viewed(request, user, execution_id, "launcher")
    ExecutionQueue(event_store(request)).request_abort(row["id"], user.name)
    return RedirectResponse(f"/executions/{quote(row['id'], safe='')}", status_code=303)


@router.post("/executions/{execution_id}/recover")
def recover_execution(request: Request, user: CsrfChecked, execution_id: str) -> Response:
    row, _role = _viewed(request, user, execution_id, "launcher")
    try:
        new = recover(event_store(request), row["id"], launched_by=user.name)
    except PlaitError as exc:
        raise HTTPException(400, str(exc)) from None
    return RedirectResponse(f"/executions/{quote(new, safe='')}", status_code=303)
