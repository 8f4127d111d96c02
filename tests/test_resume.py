"""Resuming an execution from its event log: after a failure, and after the engine was killed."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import flows
import plait
from plait.engine import Engine
from plait.store import replay
from plait.tasktype import Phase

ROOT = Path(__file__).parent.parent
FLOWS = str(ROOT / "tests" / "flows.py")


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_resuming_a_failed_execution_keeps_counting_attempts_and_finishes(tmp_path, fast_retries):
    marker = tmp_path / "calls"
    engine = Engine()
    try:
        failed = plait.run(flows.flaky_wf, {"marker": str(marker), "fail_times": 3}, options=fast_retries(),
                           engine=engine)
        assert failed.phase == Phase.FAILED
        result = asyncio.run(engine.resume(failed.execution_id, fast_retries()))
        assert result.phase == Phase.SUCCEEDED and result.outputs == {"o0": 4}
        stored = replay(failed.execution_id, engine.store.events(failed.execution_id))
        assert stored.phase == "succeeded"
        assert [a.number for a in stored.nodes["flaky"].attempts] == [1, 2, 3, 4]
        assert stored.snapshot() == result.state.snapshot()
        assert engine.store.execution(failed.execution_id)["phase"] == "succeeded"
    finally:
        engine.close()


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "plait.cli", "run", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait(predicate, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _latest_execution() -> str:
    out = subprocess.run([sys.executable, "-m", "plait.cli", "executions", "list", "--limit", "1"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return re.search(r"\d{8}-\d{6}-[0-9a-f]{6}", out).group(0)


def _resume(xid: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plait.cli", "executions", "resume", xid], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_an_engine_killed_mid_map_resumes_without_redoing_finished_work(tmp_path):
    marker = tmp_path / "items"
    proc = _start(f"{FLOWS}:crashable", "--n", "12", "--marker", str(marker), "--first-marker",
                  str(tmp_path / "first"), "--seconds", "0.4")
    _wait(lambda: len(lines(marker)) >= 6, "the map did not get going")
    time.sleep(0.5)  # let the engine record what finished
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = set(lines(marker))
    assert len(before) < 12, "the run finished before it was killed; the test proves nothing"
    xid = _latest_execution()
    resumed = _resume(xid)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert '"o0": 66' in resumed.stdout
    assert len(lines(tmp_path / "first")) == 1, "a node that had succeeded ran again"
    done = [int(x) for x in lines(marker)]
    assert sorted(set(done)) == list(range(12))
    assert len(done) - 12 <= 4, f"more items ran twice than were in flight at the crash: {done}"


def test_a_resumed_engine_attaches_to_a_container_that_outlived_the_old_one(tmp_path):
    marker = tmp_path / "starts"
    proc = _start(f"{FLOWS}:container_then_double", "--marker", str(marker), "--seconds", "3")
    _wait(lambda: len(lines(marker)) == 1, "the container task did not start")
    time.sleep(0.5)  # the attempt's handle is recorded
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    xid = _latest_execution()
    resumed = _resume(xid)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert '"o0": 14' in resumed.stdout
    assert len(lines(marker)) == 1, "the container command was started a second time instead of attached to"


def test_a_failure_after_a_resume_is_what_the_store_replays(tmp_path, fast_retries):
    marker = tmp_path / "calls"
    engine = Engine()
    try:
        failed = plait.run(flows.flaky_wf, {"marker": str(marker), "fail_times": 10}, options=fast_retries(),
                           engine=engine)
        again = asyncio.run(engine.resume(failed.execution_id, fast_retries()))
        assert again.phase == Phase.FAILED and "failure number 6" in again.error
        stored = replay(failed.execution_id, engine.store.events(failed.execution_id))
        assert stored.error == again.error
        assert stored.snapshot() == again.state.snapshot()
    finally:
        engine.close()
