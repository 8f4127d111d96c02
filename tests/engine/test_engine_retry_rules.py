"""The engine's retry rules, pinned exactly where a run through the engine can only bound them.

Written for the survivors of `make mutate` (bench/MUTATION.md): the end-to-end retry tests in
test_engine.py check lower bounds of the backoff (a loaded machine only ever makes a wait
longer), so the formula itself is checked here with the jitter drawn at its two ends.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import flows
import plait
import pytest
from plait.engine.execution import RunOptions, _Execution, build_engine
from plait.model.status import Phase


@plait.task(secrets=["never-set"], retries=2)
def needs_a_missing_secret() -> int:
    return 1


@plait.workflow
def missing_secret_wf() -> int:
    return needs_a_missing_secret()


@plait.task(retries=1, system_retries=1)
def dies_then_raises(marker: str) -> int:
    """Attempt 1 kills its worker process (a system failure), attempt 2 raises (a user one)."""
    with open(marker, "a") as fh:
        fh.write("attempt\n")
    calls = len(Path(marker).read_text().splitlines())
    if calls == 1:
        os._exit(17)
    if calls == 2:
        raise RuntimeError("a user error after a system one")
    return calls


@plait.workflow
def dies_then_raises_wf(marker: str) -> int:
    return dies_then_raises(marker=marker)


@pytest.fixture
def execution():
    engine = build_engine()
    try:
        yield lambda **options: _Execution(engine, flows.flaky_wf.spec, RunOptions(**options), None)
    finally:
        engine.close()


@pytest.mark.parametrize("jitter_end", [0, 1])
def test_backoff_doubles_from_the_base_per_failure_times_a_jitter_between_half_and_one(
        execution, monkeypatch, jitter_end):
    monkeypatch.setattr(random, "uniform", lambda low, high: (low, high)[jitter_end])
    x = execution(backoff_base=0.4, backoff_max=60.0)
    factor = (0.5, 1.0)[jitter_end]
    assert [x.backoff(n) for n in (1, 2, 3, 4)] == pytest.approx([0.4 * factor * 2 ** k for k in range(4)])


def test_backoff_stops_growing_at_backoff_max(execution, monkeypatch):
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    x = execution(backoff_base=1.0, backoff_max=5.0)
    assert x.backoff(3) == pytest.approx(4.0)
    assert x.backoff(4) == x.backoff(30) == pytest.approx(5.0)


def test_a_missing_secret_is_not_retried_even_with_a_user_retry_budget(monkeypatch):
    monkeypatch.delenv("PLAIT_SECRET_NEVER_SET", raising=False)
    execution = plait.run(missing_secret_wf, {}, options=RunOptions(backoff_base=0.01, backoff_max=0.05))
    assert execution.phase == Phase.FAILED and "needs secret 'never-set'" in execution.error
    attempts = execution.result.state.nodes["needs_a_missing_secret"].attempts
    assert [(a.phase, a.error_kind) for a in attempts] == [("failed", "user")]


def test_the_backoff_counts_system_and_user_failures_together(tmp_path, monkeypatch):
    monkeypatch.setattr(random, "uniform", lambda low, high: high)  # no jitter: each wait is its full backoff
    engine = build_engine()
    try:
        execution = plait.run(dies_then_raises_wf, {"marker": str(tmp_path / "calls")},
                              options=RunOptions(backoff_base=0.4, backoff_max=60), engine=engine)
        events = [e for e in engine.store.events(execution.execution_id) if e.kind == "attempt"]
    finally:
        engine.close()
    assert execution.phase == Phase.SUCCEEDED and execution.outputs == {"o0": 3}, execution.error
    attempts = execution.result.state.nodes["dies_then_raises"].attempts
    assert [a.error_kind for a in attempts[:2]] == ["system", "user"]
    failed = {e.data["attempt"]: e.ts for e in events if e.phase == "failed"}
    started = {e.data["attempt"]: e.ts for e in events if e.phase == "running"}
    # two failures, one of each kind, before attempt 3: the wait is base * 2 (0.8 s), not the
    # backoff for one failure (0.4 s) or for none (0.2 s); 50 ms spare for the clocks
    assert started[3] - failed[2] >= 0.4 * 2 - 0.05
