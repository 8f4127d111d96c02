"""The workflows the launch and crash tests register (copied into the test's folder first, and
removed from there once registered, so an engine can only run them from the code archive).

Every task appends a line to ``MARKS/<execution id>/<node>`` when it runs, and ``wait`` also
records its worker's pid and waits until the file ``gate`` exists: a test counts runs per
execution and node, and stops or kills a task that is running.
"""

import os
import time
from pathlib import Path

import plait


def mark(marks: str, what: str) -> Path:
    ctx = plait.current_context()
    folder = Path(marks) / ctx.execution_id
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ctx.node_id, "a") as fh:
        fh.write(what + "\n")
    return folder


@plait.task
def add(a: int, b: int, marks: str) -> int:
    mark(marks, "done")
    return a + b


@plait.task
def wait(total: int, gate: str, marks: str) -> int:
    folder = mark(marks, "start")
    (folder / f"{plait.current_context().node_id}.pid").write_text(str(os.getpid()))
    deadline = time.time() + 300
    while not Path(gate).exists():
        if time.time() > deadline:
            raise RuntimeError(f"the gate {gate} never opened")
        time.sleep(0.05)
    mark(marks, "done")
    return total


@plait.task
def checked(total: int, gate: str, marks: str) -> int:
    mark(marks, "done")
    if not Path(gate).exists():
        raise RuntimeError(f"the gate {gate} is closed")
    return total * 10


@plait.task
def scale(value: int, factor: int, marks: str) -> int:
    mark(marks, "done")
    return value * factor


@plait.workflow
def pipeline(a: int, marks: str, b: int = 1, factor: int = 1) -> int:
    """add, then scale: launched through the ``nightly`` launch plan."""
    return scale(value=add(a=a, b=b, marks=marks), factor=factor, marks=marks)


nightly = plait.LaunchPlan(pipeline, name="nightly", default_inputs={"b": 5}, fixed_inputs={"factor": 10})


@plait.workflow
def gated(a: int, b: int, marks: str, gate: str) -> int:
    """add, then wait for the gate, then scale: a test stops it while it waits."""
    return scale(value=wait(total=add(a=a, b=b, marks=marks), gate=gate, marks=marks), factor=2, marks=marks)


@plait.workflow
def fragile(a: int, b: int, marks: str, gate: str) -> int:
    """add, then checked (fails while the gate is closed), then scale: recovered once it opens."""
    return scale(value=checked(total=add(a=a, b=b, marks=marks), gate=gate, marks=marks), factor=3, marks=marks)


@plait.task
def alone(name: str, marks: str) -> str:
    """Fails if another ``alone`` runs at the same time (a lock file held for half a second)."""
    lock = Path(marks) / "alone.lock"
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        raise RuntimeError(f"{name} started while another task of the execution ran") from None
    try:
        time.sleep(0.5)
    finally:
        os.close(fd)
        lock.unlink()
    mark(marks, "done")
    return name


@plait.workflow
def pair(marks: str) -> list[str]:
    """Two independent tasks: they run side by side unless the launch limits parallelism."""
    return [alone(name="left", marks=marks), alone(name="right", marks=marks)]


one_at_a_time = plait.LaunchPlan(pair, name="one_at_a_time", max_parallelism=1)
