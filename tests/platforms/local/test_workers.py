"""The local platform's worker processes end with their engine, however it ends.

A worker runs in a session of its own (so aborting an attempt kills the task's children
too); killing the engine's process group with ``kill -9`` therefore does not reach it. It must
end anyway: the execution, when resumed, runs that attempt again, and the orphan would run
beside it (twice the work, twice the side effects).
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import engine_process

FLOW = '''
import os, time
import plait

@plait.task
def linger(marker: str) -> int:
    with open(marker, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(120)
    return 1

@plait.workflow
def wf(marker: str) -> int:
    return linger(marker=marker)
'''


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(FileNotFoundError):  # a zombie is as good as gone
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def test_a_worker_running_a_task_ends_when_its_engine_is_killed(tmp_path: Path):
    (tmp_path / "lingering.py").write_text(FLOW)
    marker = tmp_path / "pid"
    env = {"PLAIT_HOME": str(tmp_path / "home"), "PLAIT_DB_URL": "", "PLAIT_BLOB_URL": "",
           "PYTHONPATH": f"{tmp_path}:{os.environ.get('PYTHONPATH', '')}"}
    engine = engine_process.cli("run", f"{tmp_path / 'lingering.py'}:wf", "--marker", str(marker), env=env)
    pid = None
    try:
        pid = int(engine_process.wait_for(lambda: marker.exists() and marker.read_text(),
                                          "the task did not start", run=engine))
        assert os.getsid(pid) != os.getsid(engine.proc.pid), "the worker shares the engine's session: proves nothing"
        engine.kill()
        engine_process.wait_for(lambda: not _alive(pid), "the worker outlived its killed engine", timeout=10)
    finally:
        engine.kill()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
