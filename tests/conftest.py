"""Shared fixtures: every test gets its own plait home (event store, blob store, runs).

The suite runs on several pytest-xdist workers (``make test``: ``-n 3 --dist loadfile``, so a
module's module-scoped servers start once). What a test starts is private to it: servers on
free ports, PostgreSQL databases with random names, folders under ``tmp_path``. What cannot be
private is held through a lock on this machine while a test uses it (``pytorchjob_port``).
"""

from __future__ import annotations

import fcntl
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
# The shared modules here (flows.py, engine_process.py, standins/) are imported by name: by the
# tests in the folders below, by worker processes, and by `plait run` subprocesses loading a
# workflow from a test module.
sys.path.insert(0, str(TESTS))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)


@pytest.fixture(autouse=True)
def plait_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "plait-home"
    monkeypatch.setenv("PLAIT_HOME", str(home))
    monkeypatch.delenv("PLAIT_DB_URL", raising=False)
    monkeypatch.delenv("PLAIT_BLOB_URL", raising=False)
    monkeypatch.setenv("PLAIT_WORKERS", os.environ.get("PLAIT_TEST_WORKERS", "2"))
    return home


@pytest.fixture
def fast_retries():
    """Run options with millisecond backoff, so retry tests take no time."""
    from plait.engine.execution import RunOptions

    def options(**kwargs):
        return RunOptions(backoff_base=0.01, backoff_max=0.05, **kwargs)

    return options


@pytest.fixture
def pytorchjob_port() -> Iterator[None]:
    """Hold plait-pytorch's PyTorchJob master port (23456, fixed, as the training operator expects)
    for the test: on the emulated cluster every pod is a process on this machine, so two such
    jobs at once, from two xdist workers or two pytest runs, would fight over it."""
    with open(Path(tempfile.gettempdir()) / "plait-tests-pytorchjob-port.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
