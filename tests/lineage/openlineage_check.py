"""Check a run event against the OpenLineage spec as the openlineage-python package models it.

The package ships its spec as classes generated from OpenLineage's JSON schema (2-0-2 and each
facet's own schema), with validators (the run id a UUID, the event time an ISO date-time with a
time, the event type one of the spec's). :func:`check` rebuilds an event from those classes,
failing on a missing or unknown field or a bad value, and requires the rebuilt event, serialised
by the package, to equal the event: every field, each facet's ``_schemaURL`` included.
"""

from __future__ import annotations

from typing import Any

from openlineage.client import event_v2
from openlineage.client.generated import (
    base,
    error_message_run,
    job_type_job,
    output_statistics_output_dataset,
    parent_run,
)
from openlineage.client.serde import Serde


def check(event: dict[str, Any]) -> None:
    """Fail (AssertionError, TypeError or ValueError) unless ``event`` is a valid RunEvent."""
    built = event_v2.RunEvent(
        eventType=event_v2.RunState(event["eventType"]),
        eventTime=event["eventTime"],
        producer=event["producer"],
        run=event_v2.Run(runId=event["run"]["runId"],
                         facets={k: _run_facet(k, v) for k, v in event["run"]["facets"].items()}),
        job=event_v2.Job(namespace=event["job"]["namespace"], name=event["job"]["name"],
                         facets={k: _job_facet(k, v) for k, v in event["job"]["facets"].items()}),
        inputs=[event_v2.InputDataset(namespace=d["namespace"], name=d["name"], facets=_no_facets(d))
                for d in event["inputs"]],
        outputs=[event_v2.OutputDataset(namespace=d["namespace"], name=d["name"], facets=_no_facets(d),
                                        outputFacets={k: _output_facet(k, v) for k, v in d.get("outputFacets", {}).items()})
                 for d in event["outputs"]],
    )
    rebuilt = _no_empty(Serde.to_dict(built))
    assert rebuilt == _no_empty(event), f"the event differs from the spec's:\n{rebuilt}\n!=\n{event}"


def _no_empty(value: Any) -> Any:
    """``value`` less its empty dicts (``"facets": {}`` means no facets, as an absent key does)."""
    if isinstance(value, dict):
        return {k: _no_empty(v) for k, v in value.items() if v != {}}
    if isinstance(value, list):
        return [_no_empty(v) for v in value]
    return value


def _kwargs(facet: dict[str, Any]) -> dict[str, Any]:
    assert facet["_producer"].startswith("https://"), facet
    return {k: v for k, v in facet.items() if not k.startswith("_")}


def _run_facet(key: str, facet: dict[str, Any]) -> base.RunFacet:
    fields = _kwargs(facet)
    producer = facet["_producer"]
    if key == "parent":
        return parent_run.ParentRunFacet(run=parent_run.Run(**fields["run"]), job=parent_run.Job(**fields["job"]),
                                         producer=producer)
    if key == "errorMessage":
        return error_message_run.ErrorMessageRunFacet(**fields, producer=producer)
    # a custom facet: the base RunFacet and its own fields, its _schemaURL its own
    custom = base.RunFacet(producer=producer).with_additional_properties(**fields)
    custom._schemaURL = facet["_schemaURL"]
    return custom


def _job_facet(key: str, facet: dict[str, Any]) -> base.JobFacet:
    assert key == "jobType", key
    return job_type_job.JobTypeJobFacet(**_kwargs(facet), producer=facet["_producer"])


def _output_facet(key: str, facet: dict[str, Any]) -> base.OutputDatasetFacet:
    assert key == "outputStatistics", key
    return output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(**_kwargs(facet),
                                                                               producer=facet["_producer"])


def _no_facets(dataset: dict[str, Any]) -> dict[str, Any]:
    assert dataset["facets"] == {}, dataset
    return {}
