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
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plait.settings import Settings
from plait.store import Event, EventStore

ROOT = Path(__file__).parent.parent


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``plait ARGS`` in a session of its own (the test's environment, plus ``env``)."""
    return subprocess.Popen([sys.executable, "-m", "plait.cli", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})


def kill(proc: subprocess.Popen[str]) -> None:
    """``kill -9`` the engine's process group: no handler runs, nothing more is written."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def resume(execution_id: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``plait executions resume ID`` to its end."""
    proc = cli("executions", "resume", execution_id)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill(proc)
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60,
             proc: subprocess.Popen[str] | None = None) -> Any:
    """Poll ``predicate`` until it returns something true; fail naming ``what`` (and the
    engine's output, if ``proc`` ended meanwhile) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"{what}: the engine exited with code {proc.returncode} first:\n{out[-3000:]}")
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
