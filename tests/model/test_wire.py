"""Wire types: the attempt payload and result are typed, versioned and never carry a secret."""

from __future__ import annotations

import json
from pathlib import Path

import flows
import pytest
from plait.model.wire import (
    SCHEMA_VERSION,
    AttemptPayload,
    AttemptResult,
    CommandWork,
    WireVersionError,
)
from plait.runtime.job import SECRETS_ENV, read_job
from plait.runtime.payload import attempt_payload
from plait.testing import make_context

SECRET = "wire-secret-5d1e"


def payload_for(tmp_path: Path) -> dict:
    ctx = make_context(tmp_path, "x/n/1", {"a": 1, "b": 2}, secrets={"api-token": SECRET})
    template = next(iter(flows.arithmetic.spec.tasks.values()))
    return attempt_payload(ctx, template)


def test_the_payload_the_engine_builds_is_exactly_the_wire_contract(tmp_path: Path):
    payload = payload_for(tmp_path)
    model = AttemptPayload.model_validate(payload)  # extra keys are refused: the two cannot drift apart
    assert model.attempt_id == "x/n/1" and model.inputs == {"a": 1, "b": 2}
    assert model.secrets == {"api-token": SECRET}


def test_a_serialised_payload_has_a_schema_version_and_no_secret(tmp_path: Path):
    text = AttemptPayload.model_validate(payload_for(tmp_path)).model_dump_json()
    assert SECRET not in text and "secrets" not in json.loads(text)
    assert json.loads(text)["schema_version"] == SCHEMA_VERSION
    work = CommandWork(folder="/f", argv=["run"], secrets={"api-token": SECRET})
    assert SECRET not in work.model_dump_json() and SECRET not in repr(work)


def test_a_job_from_a_newer_plait_is_refused_saying_what_to_upgrade(tmp_path: Path, monkeypatch):
    payload = json.loads(AttemptPayload.model_validate(payload_for(tmp_path)).model_dump_json())
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"workdir": str(tmp_path), "payload": {**payload, "schema_version": SCHEMA_VERSION + 1}}))
    with pytest.raises(WireVersionError, match=r"schema version 2.*upgrade plait where this is read"):
        read_job(job)


def test_read_job_puts_the_secrets_back_from_the_environment_only(tmp_path: Path, monkeypatch):
    payload = json.loads(AttemptPayload.model_validate(payload_for(tmp_path)).model_dump_json())
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"workdir": str(tmp_path), "payload": payload}))
    monkeypatch.setenv(SECRETS_ENV, json.dumps({"api-token": SECRET}))
    read = read_job(job)
    assert read["payload"]["secrets"] == {"api-token": SECRET}
    assert SECRETS_ENV not in __import__("os").environ  # what the command starts does not inherit it


def test_a_result_that_does_not_fit_the_contract_is_an_error_naming_the_field():
    assert AttemptResult.model_validate({"status": "succeeded", "outputs": {"o0": 1}}).outputs == {"o0": 1}
    with pytest.raises(ValueError, match="status"):
        AttemptResult.model_validate({"status": "done"})


def test_the_handles_of_a_run_are_the_built_in_task_types_handle_models():
    import asyncio

    from plait.engine import build_engine
    from plait.model.wire import ContainerHandle, PythonHandle

    engine = build_engine()
    try:
        result = asyncio.run(engine.run(flows.container_wf.spec, {"word": "hi"}))
        handles = {e.entity.split("/")[0]: e.data["handle"] for e in engine.store.events(result.execution_id)
                   if e.kind == "attempt" and e.data.get("handle")}
    finally:
        engine.close()
    container = ContainerHandle.model_validate(handles["echo_upper"])
    assert container.platform == "local" and container.outputs == {"shout": "str", "n": "int"}
    assert container.schema_version == SCHEMA_VERSION
    assert PythonHandle.model_validate(handles["to_text"]).platform == "local"


def test_a_handle_written_by_a_newer_plait_is_refused_on_resume_not_misread():
    import asyncio

    from plait.engine import build_engine
    from plait.model.events import Event
    from plait.model.status import Phase

    engine = build_engine()
    spec = flows.arithmetic.spec
    xid = "handle-from-the-future"
    try:
        engine.store.create_execution(xid, spec, "default", "development")
        node = spec.nodes[0].id
        for event in (Event(xid, "execution", "", Phase.RUNNING, {"inputs": {"a": 1, "b": 2}}),
                      Event(xid, "node", node, Phase.RUNNING),
                      Event(xid, "attempt", f"{node}/1", Phase.RUNNING, {"node": node, "attempt": 1, "handle": {
                          "job": f"{xid}/{node}/1", "platform": "local", "schema_version": SCHEMA_VERSION + 1}})):
            engine.store.append(event)
        engine.store.flush()
        result = asyncio.run(engine.resume(xid))
    finally:
        engine.close()
    assert result.phase == Phase.FAILED
    assert f"cannot re-attach attempt 1: TaskHandle has schema version {SCHEMA_VERSION + 1}" in result.error
    assert "upgrade plait" in result.error
