"""Real ``plait server`` processes for the server tests: uvicorn on a loopback port.

``ServerProcess(db_url, home).start()`` runs ``python -m plait.cli server`` with the store at
``db_url`` and waits until ``/health`` answers; ``bootstrap(db_url, home)`` makes the admin
user in that store and returns its key, as an operator would with ``plait server bootstrap``.
``stores`` is the parameter list the server suites run under: SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from postgres_db import fresh_database

STORES = ["sqlite", "postgresql"]


@contextmanager
def store_url(kind: str, folder: Path) -> Iterator[str]:
    """A fresh store of ``kind`` (``sqlite`` or ``postgresql``) for one server test."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'server.db'}"
    else:
        with fresh_database() as url:
            yield url


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60.0,
             servers: Iterable[ServerProcess] = (), interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something true (returned); fail naming ``what``,
    with the tail of each of ``servers``' logs, after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    logs = "".join(f"\nserver log:\n{s.output()[-1500:]}" for s in servers)
    pytest.fail(f"timed out after {timeout:g}s waiting for {what}{logs}", pytrace=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(db_url: str, home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PLAIT_DB_URL": db_url, "PLAIT_HOME": str(home), "PLAIT_BLOB_URL": str(home / "blobs"),
           **extra}
    env.pop("PLAIT_SERVER", None)
    env.pop("PLAIT_API_KEY", None)
    return env


def bootstrap(db_url: str, home: Path) -> str:
    """The admin's key, made in the store by ``plait server bootstrap``."""
    done = subprocess.run([sys.executable, "-m", "plait.cli", "server", "bootstrap"], env=server_env(db_url, home),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


class ServerProcess:
    """One ``plait server`` process; ``engines`` engine workers inside it (0: none)."""

    def __init__(self, db_url: str, home: Path, engines: int = 0, auth: str = "keys",
                 env: dict[str, str] | None = None, args: list[str] | None = None) -> None:
        self.db_url, self.home, self.engines, self.auth = db_url, home, engines, auth
        self.env = env or {}
        self.args = args or []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home / f"server-{self.port}.log"

    def start(self, timeout_s: float = 60.0) -> ServerProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "plait.cli", "server", "--port", str(self.port),
                 "--engines", str(self.engines), "--auth", self.auth, *self.args],
                env=server_env(self.db_url, self.home, **self.env), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"plait server exited with {self.proc.returncode}:\n{self.output()}", pytrace=False)
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail(f"plait server did not answer /health within {timeout_s:g}s:\n{self.output()}", pytrace=False)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def kill(self) -> None:
        """``kill -9`` the server (and anything it started), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def client(self, key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url + "/api/v1", headers=headers, timeout=30)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
