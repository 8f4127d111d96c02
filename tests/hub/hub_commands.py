"""``plait`` as a user runs it in the hub tests: a subprocess, against a server or a local store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def plait(*args: str, server: Any = None, key: str | None = None, home: Path | None = None,
          ok: bool = True) -> subprocess.CompletedProcess[str]:
    """``plait ARGS`` against ``server`` (a ServerProcess) with ``key``, or the local store under
    ``home`` (default: the test's PLAIT_HOME); fails the test unless it exits as ``ok`` says."""
    env = {k: v for k, v in os.environ.items() if k not in ("PLAIT_SERVER", "PLAIT_API_KEY", "PLAIT_HUB")}
    if server is not None:
        env["PLAIT_SERVER"] = server.url
    if key is not None:
        env["PLAIT_API_KEY"] = key
    if home is not None:
        env["PLAIT_HOME"] = str(home)
    done = subprocess.run([sys.executable, "-m", "plait.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)
    assert (done.returncode == 0) == ok, done.stdout + done.stderr
    return done
