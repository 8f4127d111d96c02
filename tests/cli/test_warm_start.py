"""`plait run` starts its worker processes while it compiles the workflow, not after."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WARM_FLOWS = str(Path(__file__).parent / "warm_flows.py")


def run(*args: str, marker: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plait.cli", "run", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={**os.environ, "WARM_MARKER": str(marker)})


def test_the_worker_pool_is_starting_while_the_workflow_compiles(tmp_path):
    marker = tmp_path / "children"
    done = run(f"{WARM_FLOWS}:wf", "--x", "41", marker=marker)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "42" in done.stdout
    assert int(marker.read_text()) > 0, "no worker process had started while the workflow file was imported"


def test_inline_starts_no_worker_processes(tmp_path):
    marker = tmp_path / "children"
    done = run("--inline", f"{WARM_FLOWS}:wf", "--x", "41", marker=marker)
    assert done.returncode == 0, done.stdout + done.stderr
    assert marker.read_text() == "0"
