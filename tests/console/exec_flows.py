"""The workflows the execution and workflow pages' tests register and run.

``gated`` waits for a file the test creates, so a test sees a node running, then succeeded;
``broken`` fails with a message the test looks for in the page; ``fan`` is a map over n items;
``nested`` holds a sub-workflow; ``table`` returns a data frame and a file.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd
import plait
from plait import File


@plait.task
def start(a: int) -> int:
    return a + 1


@plait.task
def wait(value: int, gate: str) -> int:
    deadline = time.time() + 300
    while not Path(gate).exists():
        if time.time() > deadline:
            raise RuntimeError(f"the gate {gate} never opened")
        time.sleep(0.05)
    return value * 2


@plait.task
def finish(value: int) -> int:
    return value + 100


@plait.workflow
def gated(a: int, gate: str) -> int:
    """start, then wait for the gate file, then finish."""
    return finish(value=wait(value=start(a=a), gate=gate))


@plait.task
def explode(message: str) -> int:
    print(f"about to fail: {message}")
    raise RuntimeError(message)


@plait.workflow
def broken(message: str = "the reactor is on fire") -> int:
    """A task that raises with ``message``."""
    return finish(value=explode(message=message))


@plait.task
def square(x: int) -> int:
    return x * x


@plait.task
def list_of(n: int) -> list[int]:
    return list(range(n))


@plait.workflow
def fan(n: int = 10) -> list[int]:
    """A map over n items."""
    return plait.map(square, list_of(n=n))


@plait.workflow
def inner(a: int) -> int:
    return finish(value=start(a=a))


@plait.workflow
def nested(a: int = 1) -> int:
    """A sub-workflow between two tasks."""
    return finish(value=inner(a=start(a=a)))


@plait.task
def note(text: str) -> File:
    path = Path(tempfile.mkdtemp()) / "note.txt"
    path.write_text(text)
    return File(str(path))


@plait.task
def frame(rows: int, stamp: File) -> pd.DataFrame:
    return pd.DataFrame({"n": list(range(rows)), "name": [f"{stamp.read_text()} {i}" for i in range(rows)]})


@plait.workflow
def table(rows: int = 50, text: str = "hello file") -> pd.DataFrame:
    """A file, then a data frame made from it."""
    return frame(rows=rows, stamp=note(text=text))


@plait.dynamic
def grow(n: int, gate: str) -> int:
    """n steps built at run time, the last one waiting for the gate."""
    value = 0
    for _ in range(n):
        value = start(a=value)
    return wait(value=value, gate=gate)


@plait.workflow
def grown(n: int, gate: str) -> int:
    """A dynamic node between nothing and finish."""
    return finish(value=grow(n=n, gate=gate))


@plait.task
def hold(x: int, gate: str) -> int:
    """Even items wait for the file GATE-even, odd ones for GATE-odd."""
    mine = Path(f"{gate}-{'odd' if x % 2 else 'even'}")
    while not mine.exists():
        time.sleep(0.05)
    return x


@plait.workflow
def gated_fan(n: int, gate: str) -> list[int]:
    """A map whose even items wait for one gate and odd items for another."""
    return plait.map(hold, list_of(n=n), gate=gate)
