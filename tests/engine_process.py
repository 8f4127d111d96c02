"""An engine in a process of its own, for tests that crash it: start, watch its store, kill, resume.

The engine is a real ``plait run`` in its own session (as a shell's job), so a test can kill
it and every process that shares its group with ``kill -9``, as a crash would, while work it
started in sessions of their own (supervised processes, containers) outlives it. Tests wait on
what the engine has written to its event store, never on fixed sleeps: the store is read
here as ``plait executions events`` reads it, by another process.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plait.model.settings import Settings
from plait.storage.events import Event, EventStore

ROOT = Path(__file__).parent.parent


class Run:
    """A ``plait`` command in a session of its own; its output goes to a file, not a pipe, since
    work it starts in sessions of their own may hold what it inherited long after it is gone."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "plait.cli", *args], cwd=ROOT, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def wait(self, timeout: float = 120) -> str:
        """Wait for the command to end (killing it after ``timeout`` seconds); its output."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"plait did not finish within {timeout:g}s:\n{self.output()[-3000:]}") from None
        return self.output()

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the process group, as a terminal sends Ctrl-C to its foreground job."""
        os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """``kill -9`` the process group: no handler runs, nothing more is written."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def cli(*args: str, env: dict[str, str] | None = None) -> Run:
    """Start ``plait ARGS`` with the test's environment, plus ``env``."""
    return Run(*args, env=env)


def resume(execution_id: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``plait executions resume ID`` to its end."""
    run = cli("executions", "resume", execution_id)
    out = run.wait(timeout)
    return subprocess.CompletedProcess(run.proc.args, run.proc.returncode, out, "")


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60, run: Run | None = None) -> Any:
    """Poll ``predicate`` until it returns something true; fail naming ``what`` (and the
    command's output, if ``run`` ended meanwhile) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if run is not None and run.returncode is not None:
            raise AssertionError(f"{what}: plait exited with code {run.returncode} first:\n{run.output()[-3000:]}")
        assert time.monotonic() < deadline, f"{what} (waited {timeout:g}s)"
        time.sleep(0.05)


class Store:
    """This test's event store (``PLAIT_HOME``), read from outside the engine that writes it."""

    def __init__(self) -> None:
        settings = Settings.from_env()
        self.url = settings.db_url
        self.path = Path(self.url.removeprefix("sqlite:///"))
        assert self.url.startswith("sqlite:///"), "these tests watch the default SQLite store"
        self._store: EventStore | None = None

    def _open(self) -> EventStore | None:
        # Creating the tables here while the engine creates them could collide: wait for its.
        if self._store is None:
            try:
                with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True) as conn:
                    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            except sqlite3.Error:
                return None
            if not {"events", "executions", "specs"} <= tables:
                return None
            self._store = EventStore(self.url)
        return self._store

    def execution(self) -> str | None:
        """The id of the newest execution, once the engine has created it."""
        store = self._open()
        rows = store.list_executions(limit=1) if store else []
        return str(rows[0]["id"]) if rows else None

    def phase(self, execution_id: str) -> str:
        store = self._open()
        assert store is not None
        return str(store.execution(execution_id)["phase"])

    def events(self, execution_id: str) -> list[Event]:
        store = self._open()
        return list(store.events(execution_id)) if store else []

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def item_successes(events: list[Event], node: str) -> set[int]:
    """Indices of the map items of ``node`` whose success the store records."""
    return {e.data["index"] for e in events if e.kind == "item" and e.phase == "succeeded" and e.data["node"] == node}


def handles(events: list[Event], node: str) -> list[dict[str, Any]]:
    """The handles recorded for attempts of ``node`` (an attempt's "running" event holds it)."""
    return [e.data["handle"] for e in events
            if e.kind in ("attempt", "item") and e.data.get("node") == node and e.data.get("handle") is not None]


def outcome(events: list[Event]) -> Event:
    """The execution's last ending event."""
    endings = [e for e in events if e.kind == "execution" and e.phase != "running"]
    assert endings, "the execution never ended"
    return endings[-1]
