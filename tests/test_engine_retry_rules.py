"""The engine's retry rules, pinned exactly where a run through the engine can only bound them.

Written for the survivors of `make mutate` (bench/MUTATION.md): the end-to-end retry tests in
test_engine.py check lower bounds of the backoff (a loaded machine only ever makes a wait
longer), so the formula itself is checked here with the jitter drawn at its two ends.
"""

from __future__ import annotations

import random

import flows
import plait
import pytest
from plait.engine import build_engine
from plait.engine.execution import RunOptions, _Execution
from plait.model.status import Phase


@plait.task(secrets=["never-set"], retries=2)
def needs_a_missing_secret() -> int:
    return 1


@plait.workflow
def missing_secret_wf() -> int:
    return needs_a_missing_secret()


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
