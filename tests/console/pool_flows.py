"""The workflow the pools page's test registers: one task of the ``pooled`` task type
(pool_plugin.py) that holds its token until the file ``gate`` exists."""

from __future__ import annotations

import time
from pathlib import Path

import plait


@plait.task(task_type="pooled")
def hold(gate: str) -> str:
    deadline = time.time() + 300
    while not Path(gate).exists():
        if time.time() > deadline:
            raise RuntimeError(f"the gate {gate} never opened")
        time.sleep(0.05)
    return "released"


@plait.workflow
def gated(gate: str) -> str:
    return hold(gate=gate)
