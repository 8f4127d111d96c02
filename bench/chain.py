"""(a) A chain of 100 trivial tasks, each waiting for the one before.

    .venv/bin/python bench/chain.py
"""

from __future__ import annotations

import time

import flows  # noqa: E402
import plait
from common import fresh_home, machine, table
from plait.engine import build_engine
from plait.engine.execution import RunOptions


def run(inline: bool) -> float:
    engine = build_engine()
    try:
        started = time.perf_counter()
        execution = plait.run(flows.chain100, {"x": 0}, options=RunOptions(inline=inline), engine=engine)
        took = time.perf_counter() - started
    finally:
        engine.close()
    assert execution.outputs == {"o0": 100}, execution.error
    return took


def main() -> None:
    fresh_home()
    _ = flows.chain100.spec  # compile outside the timing
    run(True)
    inline, pool = run(True), run(False)
    print(f"chain of 100 trivial tasks, {machine()}")
    print(table(["mode", "total s", "ms per task"],
                [["inline", f"{inline:.2f}", f"{inline * 10:.2f}"], ["process pool", f"{pool:.2f}", f"{pool * 10:.2f}"]]))


if __name__ == "__main__":
    main()
