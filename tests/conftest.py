"""Shared fixtures: every test gets its own plait home (event store, blob store, runs)."""

from __future__ import annotations

import os
import sys
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
