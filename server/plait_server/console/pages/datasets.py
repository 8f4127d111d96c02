"""Datasets: a project's datasets (what its attempts produced and read, from the lineage index),
by name, 100 a page and searched by name prefix, and one dataset's producers and readers, each
linking to its execution's page. Pages follow the API's keyset cursors: a project of 100,000
datasets shows its thousandth page as quickly as its first."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from plait.model.api.lineage import DatasetUseOut
from plait.model.errors import InputError
from plait.service import lineage
from plait.storage.events import EventStore
from starlette.responses import Response

from plait_server.console import ConsoleUser, allowed, render
from plait_server.console.pages.executions import when

router = APIRouter(include_in_schema=False)


def _store(request: Request) -> EventStore:
    store: EventStore = request.app.state.store
    return store


@router.get("/projects/{project}/datasets")
def datasets(request: Request, user: ConsoleUser, project: str, q: str = "", cursor: str = "") -> Response:
    allowed(request, user, project, "viewer")
    try:
        page = lineage.datasets(_store(request), project, cursor=cursor or None, prefix=q.strip() or None)
    except InputError as refused:
        return render(request, "datasets.html", user=user, project=project, nav="datasets", q=q, rows=[],
                      next_url=None, first_page=False, error=str(refused))
    rows = [{**row.model_dump(), "last_text": when(row.last),
             "url": f"/projects/{project}/datasets/lineage?" + urlencode({"namespace": row.namespace, "name": row.name})}
            for row in page.items]
    return render(request, "datasets.html", user=user, project=project, nav="datasets", q=q, rows=rows,
                  first_page=not cursor, error=None, next_url=_next(page.next_cursor, q=q.strip()))


@router.get("/projects/{project}/datasets/lineage")
def dataset(request: Request, user: ConsoleUser, project: str,
            namespace: str = Query(), name: str = Query(), cursor: str = "") -> Response:
    allowed(request, user, project, "viewer")
    found = lineage.dataset_lineage(_store(request), project, namespace, name, cursor=cursor or None)
    return render(request, "datasets_one.html", user=user, project=project, nav="datasets",
                  namespace=namespace, name=name, producers=_shown(found.producers), readers=_shown(found.readers),
                  first_page=not cursor, first_url="?" + urlencode({"namespace": namespace, "name": name}),
                  next_url=_next(found.next_cursor, namespace=namespace, name=name))


def _next(cursor: str | None, **asked: str) -> str | None:
    """The next page's address, keeping what was asked (None on the last page)."""
    return "?" + urlencode({**{k: v for k, v in asked.items() if v}, "cursor": cursor}) if cursor else None


def _shown(uses: list[DatasetUseOut]) -> list[dict[str, Any]]:
    return [{**u.model_dump(), "when": when(u.ts)} for u in uses]
