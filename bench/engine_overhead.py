"""(b) Engine overhead per map item: a trivial function over 100 to 100,000 items.

    .venv/bin/python bench/engine_overhead.py [--sizes 100,1000,10000,100000]
    .venv/bin/python bench/engine_overhead.py --steady   # inline, engine kept open, best of 3 x 20,000

Every state change is recorded (two events per item in SQLite). Inline runs the function in
the engine's process; the pool sends each item to a worker process.
"""

from __future__ import annotations

import argparse
import time

import flows  # noqa: E402
import plait
from common import fresh_home, machine, table
from plait.engine import build_engine
from plait.engine.execution import RunOptions


def per_item(n: int, inline: bool) -> float:
    engine = build_engine()
    try:
        started = time.perf_counter()
        execution = plait.run(flows.trivial_map, {"n": n}, options=RunOptions(inline=inline), engine=engine)
        took = time.perf_counter() - started
    finally:
        engine.close()
    assert execution.outputs == {"o0": n}, execution.error
    return took / n * 1e6


def steady(n: int = 20_000, repeats: int = 3) -> float:
    """Inline µs per item with one engine kept open: no start-up costs, best of ``repeats``."""
    engine = build_engine()
    try:
        plait.run(flows.trivial_map, {"n": 100}, options=RunOptions(inline=True), engine=engine)
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            execution = plait.run(flows.trivial_map, {"n": n}, options=RunOptions(inline=True), engine=engine)
            best = min(best, time.perf_counter() - started)
            assert execution.outputs == {"o0": n}, execution.error
    finally:
        engine.close()
    return best / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000,10000,100000")
    parser.add_argument("--steady", action="store_true", help="inline only, engine kept open, best of 3")
    args = parser.parse_args()
    fresh_home()
    if args.steady:
        print(f"inline, engine kept open, best of 3 runs of 20,000 items: {steady():.1f} µs/item, {machine()}")
        return
    per_item(100, True)  # warm up imports and the store
    rows = []
    for n in map(int, args.sizes.split(",")):
        rows.append([f"{n:,}", f"{per_item(n, True):.1f}", f"{per_item(n, False):.1f}"])
    print(f"engine overhead per map item, µs (whole run / items), {machine()}")
    print(table(["items", "inline µs/item", "process pool µs/item"], rows))


if __name__ == "__main__":
    main()
