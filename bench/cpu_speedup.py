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
from plait.engine import Engine, RunOptions


def run(n: int, inline: bool) -> float:
    engine = Engine()
    try:
        started = time.perf_counter()
        execution = plait.run(flows.cpu_map, {"n": n}, options=RunOptions(inline=inline), engine=engine)
        took = time.perf_counter() - started
    finally:
        engine.close()
    assert execution.outputs == {"o0": n}, execution.error
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=200)
    args = parser.parse_args()
    fresh_home()
    started = time.perf_counter()
    flows.burn(20.0)
    one = (time.perf_counter() - started) * 1000
    run(4, False)  # start the pool's forkserver once
    inline = run(args.items, True)
    pool = run(args.items, False)
    cores = len(os.sched_getaffinity(0))
    print(f"CPU-bound map, {args.items} items of ~{one:.0f} ms, {machine()}")
    print(table(["mode", "seconds", "speed-up"],
                [["inline (1 process)", f"{inline:.2f}", "1.00x"],
                 [f"process pool ({cores} workers)", f"{pool:.2f}", f"{inline / pool:.2f}x"]]))


if __name__ == "__main__":
    main()
