"""Lineage: a project's datasets, who produced and who read one, an execution's run events.

Datasets are asked about within a project the caller may view (and optionally one domain):
the same path may be written by two projects, and one never sees the other's executions. An
execution's events are its project's viewers', as every route under ``/executions/{id}``.
Every list is a keyset page, as a tenant's executions are: ``limit`` rows, and ``next_cursor``
to pass back as ``cursor`` until it is null.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from plait.model.api.lineage import DatasetLineage, DatasetPage, DatasetUsePage, RunEventPage
from plait.service import lineage
from plait.storage.events import EventStore

from plait_server.app import API
from plait_server.auth import Viewer
from plait_server.routes.executions import ViewedExecution

router = APIRouter(prefix=API, tags=["lineage"])
ORDER = 45

Domain = Annotated[str | None, Query(description="Only this domain's executions (default: every domain)")]
Limit = Annotated[int, Query(ge=1, le=lineage.MAX_PAGE, description="Rows per page")]
Cursor = Annotated[str | None, Query(description="The next_cursor of the previous page")]


def _store(request: Request) -> EventStore:
    store: EventStore = request.app.state.store
    return store


@router.get("/projects/{project}/datasets")
def list_datasets(request: Request, access: Viewer, domain: Domain = None,
                  q: Annotated[str | None, Query(description="Only datasets whose name starts with this")] = None,
                  limit: Limit = lineage.PAGE, cursor: Cursor = None) -> DatasetPage:
    """The datasets the project's attempts produced or read, by name then namespace, a page at a time."""
    return lineage.datasets(_store(request), access.project, domain, limit, cursor, q or None)


@router.get("/projects/{project}/datasets/lineage")
def dataset_lineage(request: Request, access: Viewer,
                    namespace: Annotated[str, Query(description="The dataset's namespace: file, s3://bucket, ...")],
                    name: Annotated[str, Query(description="The dataset's name in its namespace: a path, a table")],
                    domain: Domain = None, limit: Limit = lineage.PAGE, cursor: Cursor = None) -> DatasetLineage:
    """The project's attempts that produced the dataset and those that read it, with their executions,
    ``limit`` of them a page (by execution and attempt)."""
    return lineage.dataset_lineage(_store(request), access.project, namespace, name, domain, limit, cursor)


@router.get("/executions/{execution_id}/lineage")
def execution_lineage(request: Request, row: ViewedExecution, limit: Limit = lineage.PAGE,
                      cursor: Cursor = None) -> RunEventPage:
    """The execution's OpenLineage run events, in order: a START and an end (COMPLETE, FAIL, ABORT) per attempt."""
    return lineage.run_events(_store(request), row["id"], limit, cursor)


@router.get("/executions/{execution_id}/datasets")
def execution_datasets(request: Request, row: ViewedExecution, limit: Limit = lineage.PAGE,
                       cursor: Cursor = None) -> DatasetUsePage:
    """Every dataset the execution's attempts read or produced, by attempt, a page at a time."""
    return lineage.execution_datasets(_store(request), row["id"], limit, cursor)
