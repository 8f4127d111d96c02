"""Lineage of local runs: every task attempt's typed inputs and outputs as OpenLineage run events.

A workflow's tasks write a File and a data frame and a third reads both: each attempt is a
START and a COMPLETE naming the blobs by their physical location, a failed attempt a FAIL with
its error; every event is checked against the OpenLineage spec as the openlineage-python
package models it; the store's dataset index says who produced and who read each blob; and
forwarding POSTs every event to a real HTTP endpoint, losing none while the endpoint is down.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import lineage_flows as flows
import plait
import pytest
from collector import Collector
from openlineage_check import check
from plait.engine import build_engine
from plait.engine.execution import RunOptions
from plait.model.lineage import AttemptRun, Dataset, RunRecord
from plait.model.settings import Settings
from plait.service.lineage import MAX_PAGE, dataset_lineage, execution_datasets, run_events
from plait.storage.events import EventStore
from plait.storage.lineage import LineageStore

sys.path.insert(0, str(Path(__file__).parent.parent / "server"))  # harness.py

from harness import wait_for  # noqa: E402

JOBS = "default/development"


def events_of(execution_id: str) -> list[dict[str, Any]]:
    engine = build_engine()
    try:
        page = run_events(engine.store, execution_id, limit=MAX_PAGE)
        assert page.next_cursor is None
        return page.items
    finally:
        engine.close()


def by_node(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        found.setdefault(event["run"]["facets"]["plait"]["node"], []).append(event)
    return found


def blob(literal: dict[str, Any]) -> tuple[str, str]:
    """A blob literal's dataset as OpenLineage names a local file: namespace ``file``, its path."""
    assert literal["uri"].startswith("file:///")
    return "file", literal["uri"].removeprefix("file://")


def names(datasets: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in datasets}


def test_each_attempt_is_a_start_and_a_complete_naming_the_blobs_it_read_and_wrote():
    done = plait.run(flows.report_flow, {"text": "hello", "n": 4})
    assert done.phase == "succeeded", done.error
    nodes = done.result.state.nodes
    report, frame = blob(nodes["write_report"].outputs["o0"]), blob(nodes["make_frame"].outputs["o0"])
    events = events_of(done.execution_id)
    for event in events:
        check(event)
    runs = by_node(events)
    assert {n: [e["eventType"] for e in es] for n, es in runs.items()} == {
        "write_report": ["START", "COMPLETE"], "make_frame": ["START", "COMPLETE"], "summarise": ["START", "COMPLETE"]}
    for node, (start, end) in runs.items():
        assert start["job"] == end["job"] and start["job"]["namespace"] == JOBS
        assert start["job"]["name"] == f"lineage_flows.{node}"
        assert start["run"]["runId"] == end["run"]["runId"] == str(uuid.UUID(start["run"]["runId"]))
        assert start["run"]["facets"]["parent"]["job"] == {"namespace": JOBS, "name": "lineage_flows.report_flow"}
    assert len({es[0]["run"]["runId"] for es in runs.values()}) == 3
    assert names(runs["write_report"][1]["outputs"]) == {report}
    assert names(runs["make_frame"][1]["outputs"]) == {frame}
    assert runs["make_frame"][1]["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 4
    start, end = runs["summarise"]
    assert names(start["inputs"]) == names(end["inputs"]) == {report, frame}
    assert start["outputs"] == end["outputs"] == []  # a str is not a dataset


def test_a_failed_attempt_ends_with_fail_and_its_error_and_each_retry_is_a_run_of_its_own(fast_retries: Any):
    done = plait.run(flows.failing_flow, {"text": "no"}, options=fast_retries())
    assert done.phase == "failed"
    events = events_of(done.execution_id)
    for event in events:
        check(event)
    refused = by_node(events)["refuse"]
    assert [e["eventType"] for e in refused] == ["START", "FAIL", "START", "FAIL"]
    assert [e["run"]["facets"]["plait"]["attempt"] for e in refused] == [1, 1, 2, 2]
    assert refused[0]["run"]["runId"] == refused[1]["run"]["runId"] != refused[2]["run"]["runId"]
    for fail in refused[1::2]:
        assert "ValueError: refusing report.txt" in fail["run"]["facets"]["errorMessage"]["message"]
        assert fail["outputs"] == [] and len(fail["inputs"]) == 1


def test_the_dataset_index_says_who_produced_a_blob_and_who_read_it():
    done = plait.run(flows.report_flow, {"text": "indexed", "n": 2})
    namespace, name = blob(done.result.state.nodes["write_report"].outputs["o0"])
    store = EventStore(Settings.from_env().db_url)
    found = dataset_lineage(store, "default", namespace, name)
    assert [(u.execution_id, u.node, u.attempt, u.field) for u in found.producers] == [
        (done.execution_id, "write_report", "write_report/1", "o0")]
    assert [(u.execution_id, u.node, u.attempt, u.field) for u in found.readers] == [
        (done.execution_id, "summarise", "summarise/1", "report")]
    assert dataset_lineage(store, "other-project", namespace, name).producers == []


def test_a_maps_items_are_recorded_when_its_task_can_hold_a_dataset_and_not_over_numbers():
    done = plait.run(flows.files_and_numbers, {"texts": ["a", "b", "c"]}, options=RunOptions(inline=True))
    assert done.phase == "succeeded", done.error
    events = events_of(done.execution_id)
    for event in events:
        check(event)
    items = [(e["run"]["facets"]["plait"]["node"], e["run"]["facets"]["plait"]["mapIndex"], e["eventType"])
             for e in events]
    assert sorted(items) == sorted((node, i, t) for node in ["map-write_report"] for i in range(3)
                                   for t in ("START", "COMPLETE"))
    assert len({names(e["outputs"]).pop() for e in events if e["eventType"] == "COMPLETE"}) == 3


def test_recording_an_attempt_again_keeps_one_copy_of_each_event(tmp_path: Path):
    store = EventStore(f"sqlite:///{tmp_path / 'again.db'}")
    lineage = LineageStore(store)
    run = AttemptRun("x1", "wf", "p", "d", "t", "python", "n", 1)
    used = Dataset("file", "/data/a.csv", "o0", "file")
    for _ in range(2):  # as an engine that resumes and re-attaches to the attempt records it
        for event_type in ("START", "COMPLETE"):
            lineage.record(RunRecord(run, event_type, 1.0, (), (used,)), [(used, "produced")])
        lineage.flush()
    assert [e["eventType"] for _, e in lineage.events("x1")] == ["START", "COMPLETE"]
    assert len(execution_datasets(store, "x1").items) == 1


def test_forwarding_posts_every_event_to_the_endpoint_while_the_engine_runs(monkeypatch: pytest.MonkeyPatch):
    with Collector() as endpoint:
        monkeypatch.setenv("PLAIT_LINEAGE_URL", endpoint.url)
        engine = build_engine()
        try:
            done = plait.run(flows.report_flow, {"text": "sent", "n": 3}, engine=engine)
            assert done.phase == "succeeded", done.error
            wait_for(lambda: len(endpoint.received) == 6, "the six events at the endpoint, the engine still open")
        finally:
            engine.close()
        stored = events_of(done.execution_id)
    assert {(path, kind) for path, kind, _ in endpoint.received} == {("/api/v1/lineage", "application/json")}
    assert sorted(endpoint.events(), key=key) == sorted(stored, key=key)
    assert len(stored) == 6


def test_an_endpoint_that_is_down_fails_no_run_and_gets_every_event_once_it_is_up(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    with Collector() as probe:  # a port that was free a moment ago: nothing listens there now
        port = int(probe.url.rsplit(":", 1)[1])
    monkeypatch.setenv("PLAIT_LINEAGE_URL", f"http://127.0.0.1:{port}")
    done = plait.run(flows.report_flow, {"text": "later", "n": 3})
    assert done.phase == "succeeded", done.error
    assert f"forwarding lineage to http://127.0.0.1:{port}/api/v1/lineage failed" in caplog.text
    engine = build_engine()
    assert engine.lineage.store.undelivered() == 6
    with Collector(port) as endpoint:
        engine.close()  # the next engine started with the URL sends what waited (here: as it closes)
    assert sorted(endpoint.events(), key=key) == sorted(events_of(done.execution_id), key=key)
    assert LineageStore(EventStore(engine.settings.db_url)).undelivered() == 0


def key(event: dict[str, Any]) -> tuple[str, str]:
    return event["run"]["runId"], event["eventType"]


def test_an_attempt_whose_lineage_cannot_be_recorded_still_runs(monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture):
    def broken(*args: Any) -> Any:
        raise RuntimeError("a literal the walk does not understand")

    monkeypatch.setattr("plait.engine.lineage.datasets", broken)
    done = plait.run(flows.report_flow, {"text": "anyway", "n": 2}, options=RunOptions(inline=True))
    assert done.phase == "succeeded", done.error
    assert events_of(done.execution_id) == []
    assert "runs unrecorded" in caplog.text


def test_a_warehouse_table_a_query_wrote_is_the_dataset_its_reader_read():
    import lineage_table_flows

    done = plait.run(lineage_table_flows.table_flow, {"i": 7}, options=RunOptions(inline=True))
    assert done.phase == "succeeded" and done.outputs == {"o0": 49}, done.error
    table = done.result.state.nodes["square"].outputs["table"]
    events = events_of(done.execution_id)
    for event in events:
        check(event)
    runs = by_node(events)
    assert names(runs["square"][1]["outputs"]) == names(runs["read"][0]["inputs"]) == {("local", table["name"])}
