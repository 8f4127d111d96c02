"""A ``plait server`` with engine workers killed with ``kill -9`` while executions run: the next
server on the same store resumes every one of them, and no node that had finished runs again
(SQLite and PostgreSQL).

Each task appends a line to ``MARKS/<execution>/<node>`` when it starts waiting (``start``)
and when it finishes (``done``), so runs are counted by their side effects. The kill takes the
server's process group; the local platform's worker processes run in sessions of their own,
so the test kills them too (by the pids the tasks recorded), as the machine going down would:
otherwise an orphaned worker would finish its task beside the resumed one.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import STORES, ServerProcess, bootstrap, store_url, wait_for
from plait.storage.events import EventStore
from plait.storage.queue import ExecutionQueue
from test_launch import PROJECT, WHERE, alive, ended, events, register, runs

ENV = {"PLAIT_SERVER_LEASE_S": "3", "PLAIT_SERVER_ENGINE_CONCURRENCY": "3", "PLAIT_WORKERS": "4"}


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    home = tmp_path / "home"
    home.mkdir()
    with store_url(request.param, home) as url:
        yield url, bootstrap(url, home), home


def test_a_killed_servers_executions_are_resumed_by_the_next_and_no_finished_node_runs_again(
        store: tuple[str, str, Path], tmp_path: Path):
    url, key, home = store
    marks, gate = tmp_path / "marks", tmp_path / "gate"
    marks.mkdir()
    first = ServerProcess(url, home, engines=1, env=ENV).start()
    try:
        with first.client(key) as api:
            assert api.post("/projects", json={"name": PROJECT}).status_code == 201
            register(first, key, home)
            inputs = {"a": 1, "b": 2, "marks": str(marks), "gate": str(gate)}
            ids = [api.post(f"{WHERE}/executions", json={"workflow": "flows.gated", "inputs": inputs})
                   .json()["execution_id"] for _ in range(4)]  # three run (the worker's limit), one waits

            def three_waiting() -> list[str]:
                waiting = [x for x in ids if (marks / x / "wait.pid").exists()
                           and any(e["entity"] == "add" and e["phase"] == "succeeded" for e in events(api, x))]
                return waiting if len(waiting) == 3 else []

            running = wait_for(three_waiting, "three executions to finish add and wait at the gate", servers=[first])
        pids = [int((marks / x / "wait.pid").read_text()) for x in running]
        first.kill()
        for pid in pids:  # the machine went down: the server's workers with it
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        queued = [r["execution_id"] for r in _queue(url)]
        assert sorted(queued) == sorted(ids), "an execution left the queue without ending"

        second = ServerProcess(url, home, engines=1, env=ENV).start()
        try:
            gate.touch()
            with second.client(key) as api:
                for xid in ids:
                    done = wait_for(lambda xid=xid: ended(api, xid), f"{xid} to end after the restart", timeout=90,
                                    servers=[second])
                    assert (done["phase"], done["outputs"]) == ("succeeded", {"o0": 6}), done
                    phases = [(e["run"], e["phase"]) for e in events(api, xid) if e["kind"] == "execution"]
                    if xid in running:  # resumed from its events by the second server: run 1
                        assert phases == [(0, "queued"), (0, "running"), (1, "running"), (1, "succeeded")]
                    else:  # never claimed before the kill: run once, by the second server
                        assert phases == [(0, "queued"), (0, "running"), (0, "succeeded")]
        finally:
            second.stop()
    finally:
        first.kill()
    for xid in ids:
        done_lines = {node: lines.count("done") for node, lines in runs(marks, xid).items()}
        assert done_lines == {"add": 1, "wait": 1, "scale": 1}, f"{xid} ran a node twice: {runs(marks, xid)}"
        started = runs(marks, xid)["wait"].count("start")
        assert started == (2 if xid in running else 1), f"{xid}: wait started {started} times"
    assert _queue(url) == []


def _queue(url: str) -> list[dict[str, Any]]:
    store = EventStore(url)
    try:
        return ExecutionQueue(store).rows()
    finally:
        store.close()
