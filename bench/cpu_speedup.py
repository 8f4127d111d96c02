"""(c) How close the process pool gets to N times faster on N cores.

    .venv/bin/python bench/cpu_speedup.py [--items 200]

A map of a CPU-bound pure-Python function (about 20 ms each) run inline (one process)
and with the worker pool (one worker per core), in the same run.
"""

from __future__ import annotations

import argparse
import os
import time

import flows  # noqa: E402
import plait
from common import fresh_home, machine, table
from plait.engine import build_engine
from plait.engine.execution import Engine, RunOptions


def run(engine: Engine, n: int, inline: bool) -> float:
    started = time.perf_counter()
    execution = plait.run(flows.cpu_map, {"n": n}, options=RunOptions(inline=inline), engine=engine)
    assert execution.outputs == {"o0": n}, execution.error
    return time.perf_counter() - started


def cold(n: int) -> float:
    """A fresh engine: the time includes starting the worker processes."""
    engine = build_engine()
    try:
        return run(engine, n, False)
    finally:
        engine.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=200)
    args = parser.parse_args()
    fresh_home()
    started = time.perf_counter()
    flows.burn(20.0)
    one = (time.perf_counter() - started) * 1000
    cold(4)  # start the forkserver the workers are forked from
    engine = build_engine()
    try:
        run(engine, 4, False)  # warm: the pool's workers are running
        inline = min(run(engine, args.items, True) for _ in range(2))
        warm = min(run(engine, args.items, False) for _ in range(2))
    finally:
        engine.close()
    fresh = cold(args.items)
    cores = len(os.sched_getaffinity(0))
    print(f"CPU-bound map, {args.items} items of ~{one:.0f} ms (one measured alone), best of 2 runs, {machine()}")
    print(table(["mode", "seconds", "speed-up"],
                [["inline (1 process)", f"{inline:.2f}", "1.00x"],
                 [f"process pool, {cores} workers already running", f"{warm:.2f}", f"{inline / warm:.2f}x"],
                 [f"process pool, {cores} workers started by the run", f"{fresh:.2f}", f"{inline / fresh:.2f}x"]]))


if __name__ == "__main__":
    main()
