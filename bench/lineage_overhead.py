"""What recording lineage costs the engine: the same engine, recording and not, interleaved.

    .venv/bin/python bench/lineage_overhead.py [--rounds 16]

A chain of 100 trivial tasks (every attempt recorded: a START and a COMPLETE) and a map of
5,000 items over numbers (nothing recorded), inline, alternating between the engine's
recorder and one that records nothing, so load on the machine falls on both alike.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import flows  # noqa: E402
import plait
from common import fresh_home, machine, table
from plait.engine import build_engine
from plait.engine.execution import RunOptions
from plait.engine.lineage import LineageRecorder


class NotRecording(LineageRecorder):
    async def recording(self, execution: Any, path: str, template: Any, inputs: Any, number: int,
                        index: int | None, attempt: Any) -> Any:
        return await attempt


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=16)
    args = parser.parse_args()
    fresh_home()
    engine = build_engine()
    recorders = {"recording": engine.lineage, "not recording": NotRecording(engine.lineage.store)}
    runs = {"chain of 100": (flows.chain100, {"x": 0}, 100), "map of 5,000": (flows.trivial_map, {"n": 5000}, 5000)}
    took: dict[tuple[str, str], list[float]] = {(r, w): [] for r in runs for w in recorders}
    try:
        for round_ in range(args.rounds):
            order = list(recorders.items())
            for which, recorder in order if round_ % 2 else reversed(order):
                engine.lineage = recorder
                for name, (wf, inputs, _) in runs.items():
                    started = time.perf_counter()
                    plait.run(wf, inputs, options=RunOptions(inline=True), engine=engine)
                    took[(name, which)].append(time.perf_counter() - started)
    finally:
        engine.close()
    rows = []
    for name, (_, _, attempts) in runs.items():
        on, off = took[(name, "recording")], took[(name, "not recording")]
        rows.append([name, f"{min(on) / attempts * 1e6:.0f}", f"{min(off) / attempts * 1e6:.0f}",
                     f"{min(on) / min(off):.2f}", f"{statistics.median(on) / statistics.median(off):.2f}"])
    print(f"lineage recording, inline, µs per attempt (best of {args.rounds}), {machine()}")
    print(table(["run", "recording", "not recording", "ratio (best)", "ratio (median)"], rows))


if __name__ == "__main__":
    main()
