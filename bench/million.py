"""A million-item map: ``plait run`` of a trivial map of 1,000,000 items, with the pool and inline.

    .venv/bin/python bench/million.py [--items 1000000] [--modes pool,inline]

Each run is the real command (``plait run bench/flows.py:trivial_map --n N``) in a fresh
interpreter and a fresh PLAIT_HOME, so every event is durable in the SQLite store the run
creates. Its progress lines are passed through as they come. Measured: the wall time of the
whole command, the engine process's peak RSS (its own ``getrusage``, printed as it exits),
and the largest process of the run (``os.wait4`` on it: the engine, or one of its workers).
The run's events are then counted in its store. Exits 1 if an aim is missed: under 60 s and
under 300 MiB.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, table

HERE = Path(__file__).resolve().parent
AIM_S, AIM_MIB = 60.0, 300.0

# The CLI's own entry point, with the engine's peak RSS printed last (stderr) as it exits.
CHILD = """
import atexit, resource, sys
atexit.register(lambda: print("peak-rss-kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))
from plait.cli.main import main
sys.argv = ["plait", *sys.argv[1:]]
main()
"""


def run(n: int, mode: str) -> tuple[float, float, float, int]:
    home = tempfile.mkdtemp(prefix="plait-million-")
    env = {**os.environ, "PLAIT_HOME": home, "PYTHONPATH": str(HERE)}
    args = [sys.executable, "-c", CHILD, "run", *(["--inline"] if mode == "inline" else []),
            f"{HERE / 'flows.py'}:trivial_map", "--n", str(n)]
    started = time.perf_counter()
    child = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stderr is not None
    for line in child.stdout:  # progress, as the user sees it
        print(f"  {mode}: {line.rstrip()}", flush=True)
    errors = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    took = time.perf_counter() - started
    if status != 0:
        sys.exit(f"plait run ({mode}) failed:\n{errors}")
    engine_kib = next(int(line.split()[1]) for line in errors.splitlines() if line.startswith("peak-rss-kib"))
    with sqlite3.connect(Path(home) / "plait.db") as db:
        events = db.execute("SELECT count(*) FROM events").fetchone()[0]
    return took, engine_kib / 1024, usage.ru_maxrss / 1024, events


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--modes", default="pool,inline")
    args = parser.parse_args()
    rows, missed = [], []
    for mode in args.modes.split(","):
        took, engine_mib, largest_mib, events = run(args.items, mode)
        rows.append([mode, f"{args.items:,}", f"{took:.1f}", f"{engine_mib:.0f}", f"{largest_mib:.0f}", f"{events:,}"])
        if took >= AIM_S or engine_mib >= AIM_MIB:
            missed.append(f"{mode}: {took:.1f} s, {engine_mib:.0f} MiB (aims: under {AIM_S:g} s and {AIM_MIB:g} MiB)")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"a map of {args.items:,} trivial items through `plait run`, {machine()}, load average {load}")
    print(table(["mode", "items", "wall s", "engine peak RSS MiB", "largest process MiB", "events stored"], rows))
    if missed:
        sys.exit("missed: " + "; ".join(missed))


if __name__ == "__main__":
    main()
