"""Secrets a task declares, resolved by the engine from the environment or from files.

README: ``secrets=["api-token"]`` is resolved for each attempt from ``PLAIT_SECRET_API_TOKEN``
or the file ``.plait/secrets/api-token`` (under the plait home); the task reads it with
``current_context().secret("api-token")``. The tasks here return a digest of what they were
given, never the value, so the tests can tell which value arrived and that it reached no event.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import plait
import pytest
from plait import current_context
from plait.engine import build_engine
from plait.engine.execution import RunOptions
from plait.model.status import Phase

FILE_VALUE = "from-the-secrets-file-7f3a"
ENV_VALUE = "from-the-environment-91c2"


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@plait.task(secrets=["api-token"], retries=3)
def token_digest(name: str) -> str:
    return f"{name}: {digest(current_context().secret('api-token'))}"


@plait.workflow
def token_wf(name: str) -> str:
    return token_digest(name=name)


def write_secret_file(home: Path, value: str) -> Path:
    path = home / "secrets" / "api-token"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n")  # as `echo value > file` writes it: the newline is not part of it
    return path


def run_and_read_events(inline: bool) -> tuple[plait.Execution, str]:
    """Run the workflow; return the execution and every stored event, as text."""
    engine = build_engine()
    try:
        execution = plait.run(token_wf, {"name": "api"}, options=RunOptions(inline=inline, backoff_base=0.01),
                              engine=engine)
        events = list(engine.store.events(execution.execution_id))
    finally:
        engine.close()
    assert events
    return execution, "\n".join(f"{e.kind} {e.entity} {e.phase} {e.data}" for e in events)


@pytest.fixture(autouse=True)
def no_secret_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLAIT_SECRET_API_TOKEN", raising=False)


@pytest.mark.parametrize("inline", [False, True], ids=["pool", "inline"])
def test_a_secret_is_read_from_its_file_under_the_plait_home(plait_home: Path, inline: bool):
    write_secret_file(plait_home, FILE_VALUE)
    execution, events = run_and_read_events(inline)
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"o0": f"api: {digest(FILE_VALUE)}"}
    assert FILE_VALUE not in events


def test_the_environment_variable_wins_over_the_file(plait_home: Path, monkeypatch: pytest.MonkeyPatch):
    write_secret_file(plait_home, FILE_VALUE)
    monkeypatch.setenv("PLAIT_SECRET_API_TOKEN", ENV_VALUE)
    execution, events = run_and_read_events(inline=False)
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"o0": f"api: {digest(ENV_VALUE)}"}
    assert ENV_VALUE not in events and FILE_VALUE not in events


def test_a_missing_secret_fails_the_attempt_at_once_and_says_where_to_put_it(plait_home: Path):
    execution, _ = run_and_read_events(inline=False)
    assert execution.phase == Phase.FAILED
    assert execution.error is not None
    assert "needs secret 'api-token'" in execution.error
    assert "PLAIT_SECRET_API_TOKEN" in execution.error
    assert str(plait_home.resolve() / "secrets" / "api-token") in execution.error
    attempts = execution.result.state.nodes["token_digest"].attempts
    assert len(attempts) == 1, "a missing secret was retried: it can never appear by itself"


def test_an_execution_that_failed_for_a_missing_secret_resumes_once_the_secret_is_set(plait_home: Path):
    import asyncio

    engine = build_engine()
    try:
        failed = plait.run(token_wf, {"name": "api"}, options=RunOptions(backoff_base=0.01), engine=engine)
        assert failed.phase == Phase.FAILED and "needs secret 'api-token'" in (failed.error or "")
        write_secret_file(plait_home, FILE_VALUE)
        resumed = asyncio.run(engine.resume(failed.execution_id, RunOptions(backoff_base=0.01)))
    finally:
        engine.close()
    assert resumed.phase == Phase.SUCCEEDED, resumed.error
    assert resumed.outputs == {"o0": f"api: {digest(FILE_VALUE)}"}
    assert [a.number for a in resumed.state.nodes["token_digest"].attempts] == [1, 2]
