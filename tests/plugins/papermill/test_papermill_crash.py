"""A notebook's process outlives an engine killed with ``kill -9``: the resumed engine attaches to it.

papermill is a ``ProcessTask``: its attempt is one supervised process (``LocalProcess``) in a
session of its own, so killing the engine's process group leaves it running. The notebook
appends its kernel's pid to a marker file when it starts and waits for a release file, so
the test decides when it ends; one line in the marker means it was started once. Two crashes
are covered: after the engine recorded the attempt's handle (the resumed engine polls it), and
after the process started but before its handle reached the store (the resumed engine submits
the same attempt again, and ``LocalProcess.start`` must find the process it started).
"""

from __future__ import annotations

import os
from pathlib import Path

import engine_process
from plait.model.settings import Settings

FLOWS = str(Path(__file__).parent / "crash_notebooks.py")
NODE = "waits"


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


class Files:
    """The gate, the release and the start marker of one test."""

    def __init__(self, tmp_path: Path) -> None:
        self.go, self.release, self.marker = tmp_path / "go", tmp_path / "release", tmp_path / "starts"

    def run(self) -> engine_process.Run:
        return engine_process.cli("run", f"{FLOWS}:gated_notebook", "--go", str(self.go), "--marker", str(self.marker),
                                  "--release", str(self.release), "--x", "21")


def _resume_while_running(store: engine_process.Store, xid: str, files: Files) -> None:
    """Resume; release the notebook once the resumed engine runs, so it attaches to a live process."""
    assert files.marker.exists() and not files.release.exists()
    engine = engine_process.cli("executions", "resume", xid)
    try:
        engine_process.wait_for(lambda: [e for e in store.events(xid) if e.kind == "execution" and e.run > 0],
                                "the resumed engine did not start", run=engine)
        files.release.touch()
        out = engine.wait(120)
    finally:
        engine.kill()
    assert engine.returncode == 0, out
    events = store.events(xid)
    assert engine_process.outcome(events).data["outputs"] == {"o0": 42}
    assert len(lines(files.marker)) == 1, "the notebook was started a second time instead of attached to"
    assert {e.data["attempt"] for e in events if e.kind == "attempt" and e.data["node"] == NODE} == {1}


def test_a_notebook_whose_handle_was_recorded_is_attached_to_after_a_crash(tmp_path):
    files = Files(tmp_path)
    files.go.touch()
    store = engine_process.Store()
    engine = files.run()
    try:
        xid = engine_process.wait_for(store.execution, "the engine did not create its execution", run=engine)
        engine_process.wait_for(lambda: engine_process.handles(store.events(xid), NODE),
                                "the notebook's handle was not recorded", run=engine)
        engine_process.wait_for(lambda: lines(files.marker), "the notebook did not start", timeout=90, run=engine)
    finally:
        engine.kill()
    try:
        _resume_while_running(store, xid, files)
    finally:
        files.release.touch()  # a notebook left behind by a failure ends
        store.close()


def test_a_notebook_started_just_before_a_crash_is_attached_to_when_submitted_again(tmp_path):
    files = Files(tmp_path)
    store = engine_process.Store()
    engine = files.run()
    try:
        xid = engine_process.wait_for(store.execution, "the engine did not create its execution", run=engine)
        # The last thing LocalProcess.start writes, after the process started and its pid was
        # recorded, is the command; a FIFO there keeps start from returning (nobody reads it),
        # so the engine dies between starting the process and recording its handle.
        process = Settings.from_env().home / "runs" / xid / NODE / "1" / "papermill" / "process"
        process.mkdir(parents=True)
        os.mkfifo(process / "command")
        files.go.touch()
        engine_process.wait_for(lambda: lines(files.marker), "the notebook did not start", timeout=90, run=engine)
    finally:
        engine.kill()
    try:
        assert not engine_process.handles(store.events(xid), NODE), (
            f"the handle reached the store before the crash, so the FIFO at {process / 'command'} did not hold "
            "LocalProcess.start (did the attempt's process folder move?): submitting again is not exercised")
        (process / "command").unlink()
        started = int((process / "pid").read_text())
        _resume_while_running(store, xid, files)
        # The resumed engine's handle names the process started before the crash. (The marker
        # alone could miss a second start: the first process may finish, in the same folder,
        # before a second one reaches its first cell, and the second is then cleaned up unseen.)
        resumed = [h["pid"] for h in engine_process.handles([e for e in store.events(xid) if e.run > 0], NODE)]
        assert resumed == [started], f"the resumed engine started process {resumed} instead of attaching to {started}"
    finally:
        files.release.touch()
        store.close()
