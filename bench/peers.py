"""plait against flytekit 1.16 on the same workloads, interleaved in one run; prints the ratios.

    nice -n 10 .venv/bin/python bench/peers.py [--cache DIR] [--rounds N] [--quick]

flytekit gets a virtual environment of its own, made once under the cache folder (default
``~/.cache/plait-bench``) with ``python -m venv`` and ``pip install flytekit==FLYTEKIT``, so
nothing is installed into plait's. Each run of a workload is a fresh process, and a plait run
gets a fresh ``PLAIT_HOME``: every event is durable in SQLite, as by default, while flytekit's
local execution keeps nothing. Round after round, each workload's variants run one after
another (plait's process pool, plait ``--inline``, flytekit), their order rotated each round,
so both tools see the same load on this shared machine. plait's processes keep the caller's
``PYTHONPATH`` (``PYTHONPATH=<checkout>/core`` measures another checkout's plait); flytekit's
get none.

How each is timed, the same way for both tools:

- chain and map: in the fresh process, after the tool, the workflow module and its compiled
  workflow are imported (flytekit compiles at import; plait's ``wf.spec`` is taken first, and
  ``plait.run``'s module, which ``import plait`` leaves to the first run, is imported), the
  time of the one call that runs the workflow: ``plait.run(wf, inputs, options=...)`` (which
  opens the store, creating it in the fresh home, starts the pool, runs, closes) and
  flytekit's ``wf(**inputs)``.
- one task: wall clock of the whole process, from exec to exit: ``plait run FILE:one`` against
  flytekit's two local ways, ``python flyte_one.py`` and ``pyflyte run flyte_one.py one``; the
  ratio is against whichever of the two is faster (median), and both are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common import machine, table

FLYTEKIT = "1.16.31"
"""The newest 1.16 on PyPI when this was written: the release the issue's figures were taken on."""

PEERS = Path(__file__).resolve().parent / "peers"
PLAIT_BIN = Path(sys.executable).parent


@dataclass
class Variant:
    """One way of running a workload: a command, and what its output must show."""

    name: str
    argv: list[str]
    plait: bool
    in_process: bool  # the child prints its own timing; else the whole process is timed
    times: list[float] = field(default_factory=list)


@dataclass
class Workload:
    name: str
    expected: int
    variants: list[Variant]


# ---- flytekit's virtual environment ---------------------------------------------------------


USERS_PYTHON = ("PYTHONDONTWRITEBYTECODE",)
"""Left out of every child's environment: on a user's machine Python keeps the bytecode it
compiles (``__pycache__``), for both tools alike; a machine that turns it off for everything
would charge plait (an editable install, compiled from source each run) and not flytekit
(pip wrote its bytecode when it installed it)."""


def clean_env() -> dict[str, str]:
    """The environment for flytekit's processes and pip: nothing that points at plait's venv."""
    return {k: v for k, v in os.environ.items()
            if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", *USERS_PYTHON) and not k.startswith("PLAIT_")}


def flyte_venv(cache: Path) -> Path:
    """The ``bin`` folder of flytekit's venv, made on first use; exits saying why if it cannot be."""
    venv = cache / f"flytekit-{FLYTEKIT}-py{sys.version_info.major}.{sys.version_info.minor}"
    done = venv / "plait-bench-freeze.txt"  # written last: a venv without it is half made
    if done.exists():
        return venv / "bin"
    shutil.rmtree(venv, ignore_errors=True)
    print(f"making flytekit's virtual environment (once): {venv}", file=sys.stderr)
    steps = [[sys.executable, "-m", "venv", str(venv)],
             [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
              "--quiet", f"flytekit=={FLYTEKIT}"]]
    for argv in steps:
        proc = subprocess.run(argv, env=clean_env(), capture_output=True, text=True)
        if proc.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
            sys.exit(f"bench/peers.py: cannot make flytekit's virtual environment at {venv}: "
                     f"`{' '.join(argv)}` exited {proc.returncode}. It needs PyPI (or a mirror in pip's "
                     f"configuration) to install flytekit=={FLYTEKIT}; --cache DIR puts it elsewhere.\n{tail}")
    freeze = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "freeze"], env=clean_env(),
                            capture_output=True, text=True, check=True).stdout
    done.write_text(freeze)
    return venv / "bin"


# ---- a child: one workload, one call, timed in its own process ----------------------------


def child(tool: str, workload: str, n: int, inline: bool) -> None:
    """Run ``workload`` once with ``tool``; print its time and result as one JSON line."""
    sys.path.insert(0, str(PEERS))
    if tool == "plait":
        import plait_flows
        from plait.engine.execution import RunOptions
        from plait.service.run import run  # plait.run, imported here as flytekit's is at its import

        wf, inputs = (plait_flows.chain100, {"x": 0}) if workload == "chain" else (plait_flows.mapped, {"n": n})
        _ = wf.spec  # compile outside the timing, as flytekit did at import
        started = time.perf_counter()
        execution = run(wf, inputs, options=RunOptions(inline=inline))
        took = time.perf_counter() - started
        if execution.outputs is None:
            sys.exit(f"plait's {workload} failed: {execution.error}")
        result = execution.outputs["o0"]
    else:
        import flyte_flows

        call: Callable[[], int] = ((lambda: flyte_flows.chain100(x=0)) if workload == "chain"
                                   else (lambda: flyte_flows.mapped(n=n)))
        started = time.perf_counter()
        result = call()
        took = time.perf_counter() - started
    print(json.dumps({"seconds": took, "result": result}))


# ---- the run --------------------------------------------------------------------------------


def workloads(flyte: Path, maps: list[int]) -> list[Workload]:
    here = [str(Path(__file__).resolve())]

    def timed(name: str, tool: str, workload: str, n: int, inline: bool = False) -> Variant:
        python = str((PLAIT_BIN if tool == "plait" else flyte) / "python")
        argv = [python, *here, "--child", tool, workload, str(n), "inline" if inline else "pool"]
        return Variant(name, argv, tool == "plait", in_process=True)

    def three(workload: str, n: int) -> list[Variant]:
        return [timed("plait", "plait", workload, n), timed("plait --inline", "plait", workload, n, True),
                timed("flytekit", "flyte", workload, n)]

    plait_cli = [str(PLAIT_BIN / "plait"), "run", "--json"]
    one = [Variant("plait", [*plait_cli, "plait_one.py:one"], True, False),
           Variant("plait --inline", [*plait_cli, "--inline", "plait_one.py:one"], True, False),
           Variant("flytekit (python)", [str(flyte / "python"), "flyte_one.py"], False, False),
           Variant("flytekit (pyflyte run)", [str(flyte / "pyflyte"), "run", "flyte_one.py", "one"], False, False)]
    return [Workload("chain of 100", 100, three("chain", 0)),
            *[Workload(f"map of {n:,} + sum", n * (n - 1) // 2, three("map", n)) for n in maps],
            Workload("one task, fresh process (wall)", 42, one)]


def result_of(variant: Variant, stdout: str) -> int:
    """The workflow's output as the process printed it."""
    lines = stdout.strip().splitlines()
    if variant.in_process:
        return int(json.loads(lines[-1])["result"])
    if variant.plait:  # `plait run --json` ends with {"o0": 42}
        return int(json.loads(stdout[stdout.rindex("{"):])["o0"])
    return int(lines[-1])


def measure(workload: Workload, variant: Variant) -> None:
    """Run ``variant`` once in a fresh process (plait: in a fresh home); check and keep its time."""
    with tempfile.TemporaryDirectory(prefix="plait-peers-") as home:
        mine = {k: v for k, v in os.environ.items()  # the default store
                if not k.startswith("PLAIT_") and k not in USERS_PYTHON}
        env = {**mine, "PLAIT_HOME": home} if variant.plait else clean_env()
        started = time.perf_counter()
        proc = subprocess.run(variant.argv, cwd=PEERS, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{workload.name}, {variant.name}: `{' '.join(variant.argv)}` exited {proc.returncode}\n"
                 f"{proc.stderr[-3000:]}")
    got = result_of(variant, proc.stdout)
    if got != workload.expected:
        sys.exit(f"{workload.name}, {variant.name}: result {got}, expected {workload.expected}")
    variant.times.append(json.loads(proc.stdout.strip().splitlines()[-1])["seconds"] if variant.in_process else wall)


def spread(values: list[float], digits: int = 2) -> str:
    """The median, with the lowest and highest in brackets when there is more than one."""
    med = f"{statistics.median(values):.{digits}f}"
    return med if len(values) < 2 else f"{med} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def rows(workload: Workload) -> list[object]:
    plait_pool, plait_inline, *flytes = workload.variants
    flyte = min(flytes, key=lambda v: statistics.median(v.times))

    def ratio(v: Variant) -> str:
        return spread([a / b for a, b in zip(v.times, flyte.times)])

    flyte_cell = " / ".join(f"{f.name.removeprefix('flytekit ')} {spread(f.times)}" for f in flytes) \
        if len(flytes) > 1 else spread(flyte.times)
    return [workload.name, ratio(plait_pool), ratio(plait_inline), spread(plait_pool.times),
            spread(plait_inline.times), flyte_cell]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path,
                        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "plait-bench",
                        help="where flytekit's virtual environment is made once and kept (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each variant, interleaved (default 3)")
    parser.add_argument("--quick", action="store_true", help="one round, without the 100,000-item map")
    parser.add_argument("--child", nargs=4, metavar=("TOOL", "WORKLOAD", "N", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        tool, workload, n, mode = args.child
        return child(tool, workload, int(n), mode == "inline")
    flyte = flyte_venv(args.cache)
    rounds = 1 if args.quick else args.rounds
    todo = workloads(flyte, [10_000] if args.quick else [10_000, 100_000])
    load = os.getloadavg()
    started = time.perf_counter()
    for r in range(rounds):
        for w in todo:
            k = r % len(w.variants)
            for v in w.variants[k:] + w.variants[:k]:
                measure(w, v)
                print(f"round {r + 1}/{rounds} {w.name}, {v.name}: {v.times[-1]:.2f} s", file=sys.stderr)
    print(f"plait against flytekit {FLYTEKIT} (local execution), {rounds} round(s) interleaved, {machine()}; "
          f"load average {load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, "
          f"{time.perf_counter() - started:.0f} s in all")
    print("ratios are plait's time / flytekit's, per round; cells: median (lowest-highest)")
    print(table(["workload", "plait / flytekit", "plait --inline / flytekit", "plait s", "plait --inline s",
                 "flytekit s"], [rows(w) for w in todo]))


if __name__ == "__main__":
    main()
