"""Cold start: ``plait run`` of a one-task workflow in a fresh process, default and --inline.

    .venv/bin/python bench/cold_start.py [--runs 9] [--against REV]

Runs are interleaved (default, inline, default, ...) so that a noisy neighbour slows both
alike; each is a new interpreter with its own PLAIT_HOME made once beforehand (the store is
then at the current schema, as on every run but a user's first). Prints the median wall time.
``--against REV`` times the code at git revision REV too (``git archive`` into a temporary
folder, put first on PYTHONPATH), interleaved with the working tree's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ONE_TASK = ROOT / "tests" / "one_task.py"


def _run(workflow: Path, home: Path, inline: bool, core: Path | None) -> float:
    # Python keeps the bytecode it compiles, as on a user's machine (this one sets
    # PYTHONDONTWRITEBYTECODE for everything; the first run writes it).
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, "PLAIT_HOME": str(home)}
    if core is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(core), env.get("PYTHONPATH", "")])
    args = [sys.executable, "-m", "plait.cli", "run", *(["--inline"] if inline else []), f"{workflow}:wf"]
    start = time.perf_counter()
    subprocess.run(args, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def _archive(rev: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "core"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "core"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--against", metavar="REV", help="also time the code at this git revision")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workflow = ONE_TASK
        codes: dict[str, Path | None] = {"this tree": None}
        if args.against:
            codes[args.against] = _archive(args.against, Path(tmp))
        homes = {label: Path(tmp) / f"home-{i}" for i, label in enumerate(codes)}
        for label, core in codes.items():
            _run(workflow, homes[label], True, core)  # creates the store; not timed
        times: dict[tuple[str, bool], list[float]] = {(label, inline): [] for label in codes for inline in (False, True)}
        for _ in range(args.runs):
            for label, core in codes.items():
                for inline in (False, True):
                    times[label, inline].append(_run(workflow, homes[label], inline, core))
        print(f"{'code':<20} {'mode':<8} {'median s':>9} {'min s':>7}  ({args.runs} runs each, "
              f"load average {os.getloadavg()[0]:.2f})")
        for (label, inline), values in times.items():
            print(f"{label:<20} {'inline' if inline else 'default':<8} "
                  f"{statistics.median(values):>9.3f} {min(values):>7.3f}")


if __name__ == "__main__":
    main()
