"""(d) Peak memory of a trivial map at 1,000 to 100,000 items.

    .venv/bin/python bench/map_memory.py

Each size runs in its own process; the figure is that process's peak RSS (engine, store
buffer, item state and the list of outputs). Flat means it barely grows with the items.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common import fresh_home, machine, table

CHILD = """
import resource, sys
sys.path.insert(0, {here!r})
import flows, plait
from plait.engine.execution import RunOptions
n, inline = int(sys.argv[1]), sys.argv[2] == "inline"
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
e = plait.run(flows.trivial_map, {{"n": n}}, options=RunOptions(inline=inline))
assert e.outputs == {{"o0": n}}, e.error
print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak(n: int, mode: str) -> tuple[float, float]:
    code = CHILD.format(here=str(Path(__file__).parent))
    out = subprocess.run([sys.executable, "-c", code, str(n), mode], capture_output=True, text=True, check=True)
    before, after = map(int, out.stdout.split())
    return before / 1024, after / 1024


def main() -> None:
    fresh_home()
    rows = []
    for n in (1_000, 10_000, 100_000):
        row: list[object] = [f"{n:,}"]
        for mode in ("inline", "pool"):
            before, after = peak(n, mode)
            row += [f"{after:.0f}", f"{after - before:.0f}"]
        rows.append(row)
    print(f"peak RSS of the engine process, MiB, {machine()}")
    print(table(["items", "inline peak", "inline growth", "pool peak", "pool growth"], rows))


if __name__ == "__main__":
    main()
