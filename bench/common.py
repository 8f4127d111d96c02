"""Shared by the benchmarks: a fresh plait home, the machine's description, a table printer."""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # worker processes import bench/flows.py


def fresh_home() -> str:
    home = tempfile.mkdtemp(prefix="plait-bench-")
    os.environ["PLAIT_HOME"] = home
    return home


def machine() -> str:
    cpus = len(os.sched_getaffinity(0))
    return f"{platform.processor() or platform.machine()}, {cpus} cores, Python {platform.python_version()}"


def table(headers: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
