"""A workflow file whose import waits to see whether `plait run` started its worker processes.

While ``plait run`` imports (compiles) this file, it looks for child processes of the engine
(the worker pool's server and its workers) for up to 3 seconds, and writes how many it
saw to WARM_MARKER. Imported by a worker, it does nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import plait


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


_marker = os.environ.get("WARM_MARKER")
if _marker and not Path(_marker).exists():
    deadline = time.monotonic() + 3
    seen: list[int] = []
    while time.monotonic() < deadline and not seen:
        seen = _children(os.getpid())
        time.sleep(0.05)
    Path(_marker).write_text(str(len(seen)))


@plait.task
def one(x: int) -> int:
    return x + 1


@plait.workflow
def wf(x: int = 1) -> int:
    return one(x=x)
