"""Lineage queries: who produced and who read a dataset, what an execution touched, its run events.

What the server's routes, the console's dataset pages and programs ask of the store's lineage
(:mod:`plait.storage.lineage`, recorded by the engine: :mod:`plait.engine.lineage`). Every
question about datasets is asked within one project (and optionally one domain): the same
path may be written by two tenants, and one never sees the other's executions.
"""

from __future__ import annotations

from typing import Any

from plait.model.api.lineage import DatasetLineage, DatasetRow, DatasetUseOut
from plait.storage.events import EventStore
from plait.storage.lineage import LineageStore, lineage_datasets


def run_events(store: EventStore, execution_id: str) -> list[dict[str, Any]]:
    """The execution's OpenLineage run events (two or more per recorded attempt), in order."""
    return LineageStore(store).events(execution_id)


def datasets(store: EventStore, project: str, domain: str | None = None, limit: int = 500) -> list[DatasetRow]:
    """The datasets the tenant's attempts produced or read, most recently touched first."""
    return [DatasetRow(**row) for row in LineageStore(store).datasets(project, domain, limit)]


def dataset_lineage(store: EventStore, project: str, namespace: str, name: str,
                    domain: str | None = None) -> DatasetLineage:
    """The attempts of the tenant's executions that produced and that read one dataset, oldest first."""
    c = lineage_datasets.c
    where = [c.namespace == namespace, c.name == name, c.project == project]
    if domain is not None:
        where.append(c.domain == domain)
    uses = LineageStore(store).uses(*where)
    return DatasetLineage(namespace=namespace, name=name,
                          producers=[u for u in uses if u.direction == "produced"],
                          readers=[u for u in uses if u.direction == "read"])


def execution_datasets(store: EventStore, execution_id: str) -> list[DatasetUseOut]:
    """Every dataset an execution's attempts read or produced."""
    return LineageStore(store).uses(lineage_datasets.c.execution_id == execution_id)
