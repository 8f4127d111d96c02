"""Lineage: a project's datasets, who produced and who read one, an execution's run events.

Datasets are asked about within a project the caller may view (and optionally one domain):
the same path may be written by two projects, and one never sees the other's executions. An
execution's events are its project's viewers', as every route under ``/executions/{id}``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from plait.model.api.lineage import DatasetLineage, DatasetRow, DatasetUseOut
from plait.service import lineage
from plait.storage.events import EventStore

from plait_server.app import API
from plait_server.auth import Viewer
from plait_server.routes.executions import ViewedExecution

router = APIRouter(prefix=API, tags=["lineage"])
ORDER = 45

Domain = Annotated[str | None, Query(description="Only this domain's executions (default: every domain)")]


def _store(request: Request) -> EventStore:
    store: EventStore = request.app.state.store
    return store


@router.get("/projects/{project}/datasets")
def list_datasets(request: Request, access: Viewer, domain: Domain = None,
                  limit: Annotated[int, Query(ge=1, le=500, description="Datasets at most")] = 200) -> list[DatasetRow]:
    """The datasets the project's attempts produced or read, most recently touched first."""
    return lineage.datasets(_store(request), access.project, domain, limit)


@router.get("/projects/{project}/datasets/lineage")
def dataset_lineage(request: Request, access: Viewer,
                    namespace: Annotated[str, Query(description="The dataset's namespace: file, s3://bucket, ...")],
                    name: Annotated[str, Query(description="The dataset's name in its namespace: a path, a table")],
                    domain: Domain = None) -> DatasetLineage:
    """The project's attempts that produced the dataset and those that read it, with their executions."""
    return lineage.dataset_lineage(_store(request), access.project, namespace, name, domain)


@router.get("/executions/{execution_id}/lineage")
def execution_lineage(request: Request, row: ViewedExecution) -> list[dict[str, Any]]:
    """The execution's OpenLineage run events: a START and an end (COMPLETE, FAIL, ABORT) per attempt."""
    return lineage.run_events(_store(request), row["id"])


@router.get("/executions/{execution_id}/datasets")
def execution_datasets(request: Request, row: ViewedExecution) -> list[DatasetUseOut]:
    """Every dataset the execution's attempts read or produced."""
    return lineage.execution_datasets(_store(request), row["id"])
