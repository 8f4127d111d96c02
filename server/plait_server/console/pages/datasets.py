"""Datasets: a project's datasets (what its attempts produced and read, from the lineage index),
and one dataset's producers and readers, each linking to its execution's page."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from plait.model.api.lineage import DatasetUseOut
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
def datasets(request: Request, user: ConsoleUser, project: str) -> Response:
    allowed(request, user, project, "viewer")
    rows = [{**row.model_dump(), "last_text": when(row.last),
             "url": f"/projects/{project}/datasets/lineage?" + urlencode({"namespace": row.namespace, "name": row.name})}
            for row in lineage.datasets(_store(request), project)]
    return render(request, "datasets.html", user=user, project=project, nav="datasets", rows=rows)


@router.get("/projects/{project}/datasets/lineage")
def dataset(request: Request, user: ConsoleUser, project: str,
            namespace: str = Query(), name: str = Query()) -> Response:
    allowed(request, user, project, "viewer")
    found = lineage.dataset_lineage(_store(request), project, namespace, name)
    return render(request, "datasets_one.html", user=user, project=project, nav="datasets",
                  namespace=namespace, name=name, producers=_shown(found.producers), readers=_shown(found.readers))


def _shown(uses: list[DatasetUseOut]) -> list[dict[str, Any]]:
    return [{**u.model_dump(), "when": when(u.ts)} for u in uses]
