"""Run ``bqemulator`` (a local BigQuery REST emulator) in its own process, offline.

Used by the ``bq_emulator`` fixture in ``conftest.py``; importable on its own for ad-hoc
experiments::

    with BqEmulator(project="test-project") as emu:
        client = emu.client()
        client.query("SELECT 1").result()

Offline start-up, in short:

* bqemulator runs ``INSTALL spatial; LOAD spatial`` at boot and refuses to start without it.
  DuckDB resolves extensions under ``$HOME/.duckdb/extensions/v<ver>/<platform>/``, so the
  child process gets a private ``HOME`` into which we ``INSTALL`` the extension file shipped
  by the ``duckdb-extension-spatial`` wheel. DuckDB's plain ``INSTALL spatial`` is a no-op once
  the extension is installed there, so nothing is downloaded.
* ``BQEMU_ENABLE_FORMAT_EXTENSIONS=false`` stops its best-effort ``INSTALL avro`` (a download).
* ``--rest-port 0 --grpc-port 0`` pick free ports; the REST port is read from the
  ``"event": "rest.listen"`` JSON log line, then ``GET /readyz`` must answer 200.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

INSTALL_HINT = (
    "bqemulator is required for the BigQuery plugin tests: "
    "pip install 'bqemulator==1.3.0' 'duckdb-extension-spatial==1.5.5' google-cloud-bigquery"
)

_LISTEN_RE = re.compile(r'"port":\s*(\d+),\s*"event":\s*"rest\.listen"')


def missing_requirements() -> str | None:
    """Return an install hint if something needed to run the emulator is absent."""
    try:
        import bqemulator  # noqa: F401
        import duckdb_extension_spatial  # noqa: F401
        import google.cloud.bigquery  # noqa: F401
    except ImportError as exc:
        return f"{INSTALL_HINT} ({exc})"
    if _console_script() is None:
        return f"{INSTALL_HINT} (no 'bqemulator' console script next to {sys.executable})"
    return None


def _console_script() -> str | None:
    candidate = Path(sys.executable).with_name("bqemulator")
    if candidate.exists():
        return str(candidate)
    return shutil.which("bqemulator")


def spatial_extension_file() -> Path:
    import duckdb
    import duckdb_extension_spatial

    root = Path(duckdb_extension_spatial.__file__).parent / "extensions"
    exact = root / f"v{duckdb.__version__}" / "spatial.duckdb_extension"
    if exact.exists():
        return exact
    found = sorted(root.glob("*/spatial.duckdb_extension"))
    if not found:
        raise FileNotFoundError(f"no spatial.duckdb_extension under {root}")
    return found[-1]


def preinstall_spatial(home: Path) -> None:
    """Install the wheel-shipped spatial extension into ``home/.duckdb/extensions``."""
    import duckdb

    ext_dir = home / ".duckdb" / "extensions"
    ext_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"extension_directory": str(ext_dir)})
    try:
        con.execute(f"INSTALL '{spatial_extension_file()}'")
    finally:
        con.close()


def _die_with_parent() -> None:
    """Linux: SIGTERM the emulator if the test process dies without running teardown."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class BqEmulator:
    """A bqemulator child process. ``endpoint`` is ``http://127.0.0.1:PORT``."""

    def __init__(self, project: str = "test-project", *, startup_timeout: float = 60.0) -> None:
        self.project = project
        self.startup_timeout = startup_timeout
        self.endpoint: str = ""
        self.port: int = 0
        self._proc: subprocess.Popen[str] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._log: list[str] = []

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> BqEmulator:
        script = _console_script()
        if script is None:
            raise RuntimeError(INSTALL_HINT)
        self._tmp = tempfile.TemporaryDirectory(prefix="bqemu-")
        home = Path(self._tmp.name)
        preinstall_spatial(home)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BQEMU_")}
        env.update(
            HOME=str(home),
            BQEMU_ENABLE_FORMAT_EXTENSIONS="false",
            BQEMU_LOG_FORMAT="json",
            BQEMU_LOG_LEVEL="info",
            BQEMU_UPLOAD_STAGING_DIR=str(home / "uploads"),
            NO_PROXY="127.0.0.1,localhost",
        )
        self._proc = subprocess.Popen(
            [script, "start", "--ephemeral", "--rest-host", "127.0.0.1", "--rest-port", "0",
             "--grpc-host", "127.0.0.1", "--grpc-port", "0", "--project", self.project],
            cwd=home,  # keep it away from any .bqemu.toml in the repo
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        port_found = threading.Event()
        threading.Thread(target=self._pump, args=(port_found,), daemon=True).start()
        deadline = time.monotonic() + self.startup_timeout
        while not port_found.wait(0.05):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("bqemulator did not start:\n" + self.log_tail())
        self.endpoint = f"http://127.0.0.1:{self.port}"
        while True:
            try:
                with urllib.request.urlopen(self.endpoint + "/readyz", timeout=2) as resp:
                    if resp.status == 200 and json.load(resp).get("status") == "ok":
                        return self
            except OSError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("bqemulator never became ready:\n" + self.log_tail())
            time.sleep(0.05)

    def _pump(self, port_found: threading.Event) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self._log.append(line)
            del self._log[:-400]
            if not port_found.is_set():
                m = _LISTEN_RE.search(line)
                if m:
                    self.port = int(m.group(1))
                    port_found.set()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def log_tail(self, n: int = 60) -> str:
        return "".join(self._log[-n:])

    def __enter__(self) -> BqEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- client ----------------------------------------------------------------
    def client(self, project: str | None = None):
        return make_client(self.endpoint, project or self.project)


def make_client(endpoint: str, project: str):
    """A real ``google.cloud.bigquery.Client`` talking to ``endpoint`` without credentials."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(
        project=project,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=endpoint),
    )
