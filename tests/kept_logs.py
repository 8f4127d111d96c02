"""An ended attempt's log as ``plait executions logs``, the API and the console read it
(``plait.service.logs.read_logs``), for the tests of what each task type keeps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from plait.model.settings import Settings
from plait.service.logs import LogText, find_attempt, read_logs
from plait.storage.events import EventStore

ROOT = Path(__file__).resolve().parents[1]


def kept_logs(execution_id: str, node: str) -> tuple[dict[str, LogText], list[str]]:
    """The parts of ``node``'s latest attempt by stream, and the notes a reader is told."""
    store = EventStore(Settings.from_env().db_url)
    try:
        notes: list[str] = []
        parts = read_logs(store, find_attempt(store, execution_id, node), note=notes.append)
    finally:
        store.close()
    by_stream = {part.stream: part for part in parts}
    assert len(by_stream) == len(parts), f"a stream was given twice: {[p.stream for p in parts]}"
    return by_stream, notes


def cli_logs(execution_id: str, node: str) -> subprocess.CompletedProcess[str]:
    """``plait executions logs EXECUTION NODE``, run as a user runs it."""
    return subprocess.run([sys.executable, "-m", "plait.cli", "executions", "logs", execution_id, node],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
