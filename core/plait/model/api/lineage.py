"""Lineage over the API: a tenant's datasets, and who produced and read one.

Every list is a keyset page: ``next_cursor`` (None on the last page) is passed back as
``cursor`` for the next, as for a tenant's executions.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, computed_field


class DatasetRow(BaseModel):
    """One dataset in a tenant's list: how many attempts produced and read it, and when last."""

    namespace: str
    name: str
    produced: int
    read: int
    last: float


class DatasetPage(BaseModel):
    """A page of a tenant's datasets, by name then namespace."""

    items: list[DatasetRow]
    next_cursor: str | None = None


class DatasetUseOut(BaseModel):
    """One attempt that produced or read a dataset, and the execution it belongs to."""

    namespace: str
    name: str
    direction: Literal["read", "produced"]
    project: str
    domain: str
    execution_id: str
    node: str
    task: str
    attempt: str
    """The attempt in its execution: ``node/2``, or ``node[7]/1`` for a map's item."""
    field: str
    """The input or output that held the dataset (``files[2]`` in a list)."""
    kind: str
    ts: float

    @computed_field  # type: ignore[prop-decorator]
    @property
    def execution_url(self) -> str:
        """The execution's summary in the API."""
        return f"/api/v1/executions/{self.execution_id}"


class DatasetLineage(BaseModel):
    """Who produced a dataset and who read it, within one tenant."""

    namespace: str
    name: str
    producers: list[DatasetUseOut]
    readers: list[DatasetUseOut]
    next_cursor: str | None = None
    """More producers and readers follow: a page holds ``limit`` uses of the two together."""


class DatasetUsePage(BaseModel):
    """A page of the datasets an execution's attempts read or produced, by attempt."""

    items: list[DatasetUseOut]
    next_cursor: str | None = None


class RunEventPage(BaseModel):
    """A page of an execution's OpenLineage run events, in the order they were recorded."""

    items: list[dict[str, Any]]
    next_cursor: str | None = None
