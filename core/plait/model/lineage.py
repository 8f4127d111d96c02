"""Lineage: an attempt's typed inputs and outputs as OpenLineage run events, built as plain data.

An attempt is an OpenLineage *run* of a *job*: the job is the task, named ``name`` = the
task's name in namespace ``project/domain``; the run id is a UUID derived from the attempt id
(uuid5), so recording an attempt twice (an engine that resumes and re-attaches) gives the same
ids and the store keeps one copy. The execution is the run's parent (the ``parent`` facet).

Datasets are named by where they physically are, per OpenLineage's naming conventions: a blob
``file:///data/x.parquet`` is namespace ``file``, name ``/data/x.parquet``; ``s3://bucket/k`` is
namespace ``s3://bucket``, name ``k``; a warehouse table (``plait_sql.Table``) is namespace
``bigquery`` / ``snowflake`` / its connection, name the table's qualified name. Values that are
not datasets (ints, strings, a large list moved to the blob store as ``{"$ref": ...}``) are
not recorded.

The events are dicts of the OpenLineage 2-0-2 spec, built here without the
``openlineage-python`` package (the core does not depend on it); the tests check every event
against that package's classes.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from plait.model.spec import TaskTemplate
from plait.model.status import Phase
from plait.model.typespec import TypeSpec

SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
FACETS = "https://openlineage.io/spec/facets"
PRODUCER = "https://github.com/plait-dev/plait"
"""Who made the events (OpenLineage's ``producer``: a URI naming the software)."""
PLAIT_FACET_SCHEMA = "https://github.com/plait-dev/plait/blob/main/README.md#lineage"
"""The ``_schemaURL`` of plait's own run facet (``plait``: execution, node, attempt, map item)."""

TABLE_REF = "plait_sql.table.Table"
"""The struct type of a warehouse table reference (plait-sql's ``Table``: name, connection)."""

_RUNS = uuid.UUID("5f0d3c52-8a0e-4f1b-9a57-9d1f6c1e0b11")
"""The uuid5 namespace of run ids: an attempt's, an execution's."""

EventType = Literal["START", "COMPLETE", "FAIL", "ABORT"]
Direction = Literal["read", "produced"]

_END: dict[Phase, EventType] = {Phase.SUCCEEDED: "COMPLETE", Phase.ABORTED: "ABORT"}
"""The terminal event of an attempt that ended in a phase; every other ending is a FAIL."""


def terminal_event(phase: Phase) -> EventType:
    """The OpenLineage event type that ends an attempt which ended in ``phase``."""
    return _END.get(phase, "FAIL")


@functools.lru_cache(maxsize=1024)  # an execution's is asked for each event of its attempts
def run_id(attempt_or_execution_id: str) -> str:
    """The OpenLineage run id of an attempt (or an execution): the same for the same id."""
    return str(uuid.uuid5(_RUNS, attempt_or_execution_id))


@dataclass(frozen=True)
class Dataset:
    """One dataset an attempt read or produced: where it is, and which input or output it was."""

    namespace: str
    name: str
    field: str
    """The input or output it was, with its place in a list or dict (``files[2]``)."""
    kind: str
    """The value's type: ``file``, ``directory``, ``dataframe``, ``table``, or a plugin's kind."""
    rows: int | None = None


def dataset_name(uri: str) -> tuple[str, str]:
    """A blob URI's OpenLineage (namespace, name): ``file`` and the path for a local file,
    ``scheme://authority`` and the path within it otherwise (``s3://bucket``, ``key``)."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return "file", uri
    if scheme == "file":
        return "file", rest if rest.startswith("/") else "/" + rest
    authority, _, path = rest.partition("/")
    return f"{scheme}://{authority}", path


def has_datasets(template: TaskTemplate) -> bool:
    """Whether any input or output type of ``template`` can hold a dataset."""
    types = (*template.interface.inputs.values(), *template.interface.outputs.values())
    return any(_can_hold(t) for t in types)


def _can_hold(spec: TypeSpec) -> bool:
    if spec.kind in ("optional", "list", "dict"):
        return any(_can_hold(a) for a in spec.args)
    if spec.kind == "struct":
        return spec.ref == TABLE_REF or any(_can_hold(f) for f in (spec.fields or {}).values())
    return spec.kind not in _SCALARS


_SCALARS = frozenset(("int", "float", "str", "bool", "bytes", "date", "datetime", "timedelta", "enum", "none",
                      "any", "pickle"))


def datasets(literals: dict[str, Any] | None, types: dict[str, TypeSpec]) -> list[Dataset]:
    """The datasets among ``literals`` (input or output literals, by name), walked by their types."""
    if not literals:
        return []
    found: dict[tuple[str, str], Dataset] = {}
    for name, spec in types.items():
        if name in literals and _can_hold(spec):  # a list of a million ints is not walked
            for dataset in _walk(literals[name], spec, name):
                found.setdefault((dataset.namespace, dataset.name), dataset)
    return list(found.values())


def _walk(literal: Any, spec: TypeSpec, where: str) -> Iterator[Dataset]:
    if literal is None:
        return
    kind = spec.kind
    if kind == "optional":
        yield from _walk(literal, spec.args[0], where)
    elif kind == "list" and isinstance(literal, list):
        for i, item in enumerate(literal):
            yield from _walk(item, spec.args[0], f"{where}[{i}]")
    elif kind == "dict" and isinstance(literal, dict):
        for key, item in literal.items():
            yield from _walk(item, spec.args[1], f"{where}[{key!r}]")
    elif kind == "struct" and isinstance(literal, dict):
        if spec.ref == TABLE_REF and isinstance(literal.get("name"), str):
            yield Dataset(literal.get("connection") or "warehouse", literal["name"], where, "table")
        else:
            for key, field_spec in (spec.fields or {}).items():
                yield from _walk(literal.get(key), field_spec, f"{where}.{key}")
    elif kind not in _SCALARS and isinstance(literal, dict) and isinstance(literal.get("uri"), str):
        namespace, name = dataset_name(literal["uri"])
        rows = literal.get("rows")
        yield Dataset(namespace, name, where, kind, rows if isinstance(rows, int) else None)


@dataclass(frozen=True)
class AttemptRun:
    """What an attempt's run events say about it besides their type, time and datasets."""

    execution_id: str
    workflow: str
    project: str
    domain: str
    task: str
    task_type: str
    node: str
    attempt: int
    index: int | None = None

    @functools.cached_property
    def entity(self) -> str:
        """The attempt's id less the execution's: the attempt's entity in the event log."""
        item = "" if self.index is None else f"[{self.index}]"
        return f"{self.node}{item}/{self.attempt}"

    @functools.cached_property
    def run_id(self) -> str:
        """The attempt's OpenLineage run id (from its attempt id, ``EXECUTION/ENTITY``)."""
        return run_id(f"{self.execution_id}/{self.entity}")

    @property
    def job_namespace(self) -> str:
        return f"{self.project}/{self.domain}"


@dataclass(frozen=True)
class RunRecord:
    """One run event of an attempt as the store keeps it: the few facts its OpenLineage event
    is built from (:meth:`event`), a fifth of the event's size and cheap to make."""

    run: AttemptRun
    event_type: EventType
    at: float
    inputs: tuple[Dataset, ...] = ()
    outputs: tuple[Dataset, ...] = ()
    message: str | None = None

    def event(self) -> dict[str, Any]:
        """The OpenLineage RunEvent."""
        return run_event(self.run, self.event_type, self.at, self.inputs, self.outputs, self.message)

    def to_json(self) -> str:
        r = self.run
        return orjson.dumps([r.execution_id, r.workflow, r.project, r.domain, r.task, r.task_type, r.node, r.attempt,
                             r.index, self.event_type, self.at, [_row(d) for d in self.inputs],
                             [_row(d) for d in self.outputs], self.message]).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> RunRecord:
        *run, event_type, at, inputs, outputs, message = orjson.loads(text)
        return cls(AttemptRun(*run), event_type, at, tuple(Dataset(*d) for d in inputs),
                   tuple(Dataset(*d) for d in outputs), message)


def _row(d: Dataset) -> tuple[str, str, str, str, int | None]:
    return d.namespace, d.name, d.field, d.kind, d.rows


def run_event(run: AttemptRun, event_type: EventType, at: float, inputs: Sequence[Dataset],
              outputs: Sequence[Dataset], message: str | None = None) -> dict[str, Any]:
    """One OpenLineage RunEvent (2-0-2) of an attempt, as JSON-ready data."""
    plait_facet: dict[str, Any] = {
        **_facet(PLAIT_FACET_SCHEMA), "executionId": run.execution_id, "node": run.node,
        "attempt": run.attempt, "taskType": run.task_type,
    }
    if run.index is not None:
        plait_facet["mapIndex"] = run.index
    run_facets: dict[str, Any] = {
        "parent": {
            **_facet(f"{FACETS}/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet"),
            "run": {"runId": run_id(run.execution_id)},
            "job": {"namespace": run.job_namespace, "name": run.workflow},
        },
        "plait": plait_facet,
    }
    if message is not None and event_type == "FAIL":
        run_facets["errorMessage"] = {
            **_facet(f"{FACETS}/1-0-1/ErrorMessageRunFacet.json"
                     "#/$defs/ErrorMessageRunFacet"),
            "message": message, "programmingLanguage": "python",
        }
    return {
        "eventType": event_type,
        "eventTime": dt.datetime.fromtimestamp(at, dt.UTC).isoformat(),
        "producer": PRODUCER,
        "schemaURL": f"{SPEC}#/$defs/RunEvent",
        "run": {"runId": run.run_id, "facets": run_facets},
        "job": {"namespace": run.job_namespace, "name": run.task, "facets": {
            "jobType": {
                **_facet(f"{FACETS}/2-0-4/JobTypeJobFacet.json"
                         "#/$defs/JobTypeJobFacet"),
                "processingType": "BATCH", "integration": "PLAIT", "jobType": "TASK",
            },
        }},
        "inputs": [{"namespace": d.namespace, "name": d.name, "facets": {}} for d in inputs],
        "outputs": [_output(d) for d in outputs],
    }


def _output(dataset: Dataset) -> dict[str, Any]:
    out: dict[str, Any] = {"namespace": dataset.namespace, "name": dataset.name, "facets": {}}
    if dataset.rows is not None:
        out["outputFacets"] = {"outputStatistics": {
            **_facet(f"{FACETS}/1-0-2/OutputStatisticsOutputDatasetFacet.json"
                     "#/$defs/OutputStatisticsOutputDatasetFacet"),
            "rowCount": dataset.rows,
        }}
    return out


def _facet(schema: str) -> dict[str, str]:
    return {"_producer": PRODUCER, "_schemaURL": schema}
