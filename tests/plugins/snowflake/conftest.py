import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

import pytest  # noqa: E402

FAKESNOW_PLUS = Path(__file__).resolve().parents[2] / "standins" / "fakesnow_plus.py"
_NEEDED = {
    "fakesnow": "fakesnow[server]",
    "snowflake.connector": "snowflake-connector-python",
    "uvicorn": "fakesnow[server]",
    "starlette": "fakesnow[server]",
}
_STARTUP_TIMEOUT_S = 60


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a missing parent package
        return False


def _log_tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-4000:]
    except OSError:
        return "(no log)"


@pytest.fixture(scope="session")
def fakesnow_server(tmp_path_factory: pytest.TempPathFactory):
    """A fake Snowflake (fakesnow + fakesnow_plus.py) in its own process, for the real connector.

    Yields the keyword arguments for ``snowflake.connector.connect(**params)``. The database and
    schema are created when a connection logs in with them. All connections share one in-memory
    database for the whole session (temporary tables stay per connection), so use unique table
    names. The process is stopped at the end of the test session.
    """
    missing = sorted({pkg for mod, pkg in _NEEDED.items() if not _importable(mod)})
    if missing:
        pytest.fail(
            f"The Snowflake plugin tests need a fake Snowflake server; install it with: pip install {' '.join(missing)}",
            pytrace=False,
        )

    workdir = tmp_path_factory.mktemp("fakesnow")
    port_file, log = workdir / "port", workdir / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(FAKESNOW_PLUS), "--port", "0", "--port-file", str(port_file)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        port = None
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(
                    f"fakesnow_plus exited with {proc.returncode}:\n{_log_tail(log)}", pytrace=False
                )
            if port is None and port_file.exists():
                port = int(port_file.read_text())
            if port is not None:
                try:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/fakesnow-plus/health", timeout=1
                    ) as r:
                        if json.load(r).get("ok"):
                            break
                except OSError:
                    pass
            time.sleep(0.05)
        else:
            pytest.fail(
                f"fakesnow_plus not ready after {_STARTUP_TIMEOUT_S}s:\n{_log_tail(log)}",
                pytrace=False,
            )

        yield {
            "account": "fakesnow",
            "user": "fake",
            "password": "snow",
            "host": "127.0.0.1",
            "port": port,
            "protocol": "http",
            "database": "FAKESNOW_DB",
            "schema": "PUBLIC",
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
