"""Resuming an execution from its event log: after a failure, after the engine was killed, after Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import Counter
from pathlib import Path

import engine_process
import flows
import plait
from plait.engine.execution import build_engine
from plait.model.status import Phase
from plait.storage.events import replay

ROOT = Path(__file__).resolve().parents[2]
FLOWS = str(ROOT / "tests" / "flows.py")

# A command that outlives the engine (a supervised process in a session of its own) and needs a
# secret: what a resume must stop when the secret is gone by then.
sleeper_with_a_secret = plait.container_task(
    "sleeper-with-a-secret", image="debian:bookworm-slim", secrets=["resume-token"],
    command=["sh", "-c", "echo $$ >> {{inputs.marker}}; sleep 60; echo 7 > {{outputs}}/n"],
    inputs={"marker": str}, outputs={"n": int},
)


@plait.workflow
def sleeper_with_a_secret_wf(marker: str) -> int:
    return sleeper_with_a_secret(marker=marker)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_resuming_a_failed_execution_keeps_counting_attempts_and_finishes(tmp_path, fast_retries):
    marker = tmp_path / "calls"
    engine = build_engine()
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


MAP = "map-slow_item"


def _start_map(tmp_path: Path, n: int) -> engine_process.Run:
    return engine_process.cli("run", f"{FLOWS}:crashable", "--n", str(n), "--marker", str(tmp_path / "items"),
                              "--first-marker", str(tmp_path / "first"), "--seconds", "0.4")


def _wait_for_recorded_items(store: engine_process.Store, engine: engine_process.Run, count: int) -> str:
    """Wait until the running engine's store records ``count`` successful map items."""
    xid = engine_process.wait_for(store.execution, "the engine did not create its execution", run=engine)
    engine_process.wait_for(lambda: len(engine_process.item_successes(store.events(xid), MAP)) >= count,
                            f"the store did not record {count} successful map items", run=engine)
    return xid


def _assert_resumed_without_rerunning(tmp_path: Path, store: engine_process.Store, xid: str, n: int,
                                      recorded: set[int]) -> None:
    """Resume ``xid``; no item in ``recorded`` may start again, and every item must have run."""
    assert 0 < len(recorded) < n, f"the map was not part-way when stopped ({sorted(recorded)}): the test proves nothing"
    resumed = engine_process.resume(xid)
    assert resumed.returncode == 0, resumed.stdout
    assert f'"o0": {sum(range(n))}' in resumed.stdout
    assert len(lines(tmp_path / "first")) == 1, "a node that had succeeded ran again"
    starts = Counter(int(x) for x in lines(tmp_path / "items"))  # one line per start of an item
    assert sorted(starts) == list(range(n)), "not every item ran"
    again = sorted(i for i in recorded if starts[i] > 1)
    assert not again, f"items whose success was recorded before the stop ran again: {again}"
    events = store.events(xid)
    attempts_after = sorted({e.data["index"] for e in events if e.kind == "item" and e.run > 0
                             and e.data["node"] == MAP and e.data["index"] in recorded})
    assert not attempts_after, f"the resumed run recorded attempts of items that had succeeded: {attempts_after}"
    assert engine_process.outcome(events).phase == "succeeded" and store.phase(xid) == "succeeded"


def test_an_engine_killed_mid_map_resumes_without_running_a_recorded_item_again(tmp_path):
    n = 16
    store = engine_process.Store()
    engine = _start_map(tmp_path, n)
    try:
        xid = _wait_for_recorded_items(store, engine, 4)
    finally:
        engine.kill()
    # what the store holds after the crash is what the resumed engine reads
    recorded = engine_process.item_successes(store.events(xid), MAP)
    assert store.phase(xid) == "running", "a killed engine cannot have recorded an ending"
    _assert_resumed_without_rerunning(tmp_path, store, xid, n, recorded)
    store.close()


def test_ctrl_c_mid_map_aborts_the_execution_and_resume_finishes_it_without_redoing_successes(tmp_path):
    n = 16
    store = engine_process.Store()
    engine = _start_map(tmp_path, n)
    try:
        xid = _wait_for_recorded_items(store, engine, 4)
        engine.signal(signal.SIGINT)  # Ctrl-C in a terminal: the foreground job's process group gets it
        out = engine.wait(60)
    finally:
        engine.kill()
    assert engine.returncode == 130, out
    assert f"execution {xid} aborted" in out
    events = store.events(xid)
    assert engine_process.outcome(events).phase == "aborted" and store.phase(xid) == "aborted"
    state = replay(xid, events)
    assert state.nodes[MAP].phase == "aborted"
    assert not state.nodes[MAP].item_counts.get("running"), "an item that was running is not recorded as ended"
    assert state.nodes[MAP].item_counts.get("aborted"), "no running item was recorded as aborted"
    _assert_resumed_without_rerunning(tmp_path, store, xid, n, engine_process.item_successes(events, MAP))
    store.close()


def test_a_resumed_engine_attaches_to_a_container_that_outlived_the_old_one(tmp_path):
    marker = tmp_path / "starts"
    store = engine_process.Store()
    engine = engine_process.cli("run", f"{FLOWS}:container_then_double", "--marker", str(marker), "--seconds", "3")
    try:
        xid = engine_process.wait_for(store.execution, "the engine did not create its execution", run=engine)
        engine_process.wait_for(lambda: engine_process.handles(store.events(xid), "slow_echo"),
                                "the container's handle was not recorded", run=engine)
        engine_process.wait_for(lambda: len(lines(marker)) == 1, "the container task did not start", run=engine)
    finally:
        engine.kill()
    resumed = engine_process.resume(xid)
    assert resumed.returncode == 0, resumed.stdout
    assert '"o0": 14' in resumed.stdout
    assert len(lines(marker)) == 1, "the container command was started a second time instead of attached to"
    store.close()


def test_a_failure_after_a_resume_is_what_the_store_replays(tmp_path, fast_retries):
    marker = tmp_path / "calls"
    engine = build_engine()
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


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent to reap it does not)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_resume_whose_secret_is_gone_fails_naming_it_and_stops_the_work_the_old_engine_started(
        tmp_path, monkeypatch):
    monkeypatch.delenv("PLAIT_SECRET_RESUME_TOKEN", raising=False)  # the resumed engine has no secret
    marker = tmp_path / "starts"
    store = engine_process.Store()
    engine = engine_process.cli("run", f"{__file__}:sleeper_with_a_secret_wf", "--marker", str(marker),
                                env={"PLAIT_SECRET_RESUME_TOKEN": "only-the-first-engine-has-it"})
    pid = None
    try:
        try:
            xid = engine_process.wait_for(store.execution, "the engine did not create its execution", run=engine)
            handles = engine_process.wait_for(
                lambda: engine_process.handles(store.events(xid), "sleeper_with_a_secret"),
                "the command's handle was not recorded", run=engine)
            pid = handles[0]["pid"]
            engine_process.wait_for(lambda: lines(marker), "the command did not start", run=engine)
        finally:
            engine.kill()
        assert _alive(pid), "the command did not outlive the killed engine: the test proves nothing"
        resumed = engine_process.resume(xid)
        assert resumed.returncode != 0, resumed.stdout
        ending = engine_process.outcome(store.events(xid))
        assert ending.phase == "failed" and "needs secret 'resume-token'" in ending.data["error"], ending.data
        engine_process.wait_for(lambda: not _alive(pid) and not _alive(int(lines(marker)[0])),
                                "the resumed engine failed the attempt but left the old engine's command running",
                                timeout=10)
    finally:
        if pid is not None:  # a broken engine leaves it running: do not leak it past the test
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        store.close()
