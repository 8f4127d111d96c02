"""`Engine.resume` called from Python: without options, and with the caller's own options.

Written for the survivors of `make mutate` (bench/MUTATION.md): test_resume.py always passes
options to resume, so neither the default nor the use of the given options was checked.
"""

from __future__ import annotations

import asyncio

import flows
import plait
from plait.engine import build_engine
from plait.engine.execution import Engine, RunOptions
from plait.model.status import Phase


def failed_flaky(engine: Engine, tmp_path, fail_times: int) -> str:
    """A flaky_wf execution that failed its three attempts (retries=2); returns its id."""
    fast = RunOptions(backoff_base=0.01, backoff_max=0.05)
    failed = plait.run(flows.flaky_wf, {"marker": str(tmp_path / "calls"), "fail_times": fail_times},
                       options=fast, engine=engine)
    assert failed.phase == Phase.FAILED
    return failed.execution_id


def test_resume_without_options_carries_on_with_the_defaults(tmp_path):
    engine = build_engine()
    try:
        result = asyncio.run(engine.resume(failed_flaky(engine, tmp_path, fail_times=3)))
    finally:
        engine.close()
    assert result.phase == Phase.SUCCEEDED and result.outputs == {"o0": 4}


def test_resume_retries_with_the_backoff_of_the_options_it_is_given(tmp_path):
    engine = build_engine()
    try:
        xid = failed_flaky(engine, tmp_path, fail_times=4)
        result = asyncio.run(engine.resume(xid, RunOptions(backoff_base=4.0, backoff_max=4.0)))
        events = [e for e in engine.store.events(xid) if e.kind == "attempt"]
    finally:
        engine.close()
    assert result.phase == Phase.SUCCEEDED and result.outputs == {"o0": 5}
    failed = {e.data["attempt"]: e.ts for e in events if e.phase == "failed"}
    started = {e.data["attempt"]: e.ts for e in events if e.phase == "running"}
    # attempt 4 (the resumed run's first) failed; its retry waits 4 s times a jitter in [0.5, 1],
    # where the default options (backoff_base=1) would wait at most 1 s
    assert started[5] - failed[4] >= 2.0


def test_each_resume_records_its_events_under_the_next_run_number(tmp_path):
    fast = RunOptions(backoff_base=0.01, backoff_max=0.05)
    engine = build_engine()
    try:
        xid = failed_flaky(engine, tmp_path, fail_times=6)
        assert asyncio.run(engine.resume(xid, fast)).phase == Phase.FAILED  # attempts 4-6 fail too
        assert asyncio.run(engine.resume(xid, fast)).phase == Phase.SUCCEEDED  # attempt 7
        runs = {e.data["attempt"]: e.run for e in engine.store.events(xid) if e.kind == "attempt"}
    finally:
        engine.close()
    assert runs == {1: 0, 2: 0, 3: 0, 4: 1, 5: 1, 6: 1, 7: 2}
