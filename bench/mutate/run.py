"""`make mutate`: mutation testing of the rules the project promises most, report in bench/MUTATION.md.

    .venv/bin/python bench/mutate/run.py [--target NAME ...] [--jobs 2] [--report bench/MUTATION.md]

Targets: the token allocator (``Allocator``), the Redis backend's Lua scripts, the engine's
retry and resume logic, and the compiler's type checks. For each target a mutant is one small
change to one function (or one named change to the Lua text); the target's tests run against
it with ``-x`` and a timeout; a failing run kills it, a passing run means it survived.

Why our own mutator rather than mutmut or cosmic-ray (both tried first):

- mutmut 3.8 finds code only in ``./``, ``src/`` or ``source/`` and names mutants after the
  file path, so with ``core/plait`` every mutant had "no tests"; from a staging copy it ran,
  but in its default fork mode every mutant timed out (the tests use threads, asyncio and
  subprocesses), its forkserver mode took about 10 s a mutant and it mutates every string
  literal (516 mutants in tokens.py), far past the 40-minute budget; and its stats run needs
  every selected test to pass under its tracer, which a timing-sensitive test did not.
- cosmic-ray mutates the files in place, but this checkout is shared with test runs going on
  beside it, and it has no way to confine mutants to chosen functions without a filter of
  our own.
- neither can mutate Lua inside a Python string, which needed a mutator of our own anyway.

So: each mutant is written into a private copy of ``core/`` (one per job), and pytest runs
with ``PYTHONPATH`` pointing at that copy, so the worker processes and CLI subprocesses the
tests start import the mutant too; the checkout itself is never modified.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import lua
import pymut
from notes import NOTES

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Target:
    name: str
    what: str
    file: str
    tests: list[str]
    functions: list[str] = field(default_factory=list)  # empty: the Lua mutations
    timeout: float = 180.0
    """Seconds one mutant's test run may take; past it the mutant counts as timed out (detected)."""
    args: list[str] = field(default_factory=list)
    """More pytest arguments: ``-k`` to leave out tests that cannot see the target, or that
    assert wall-clock speed (they fail on a machine this loaded, which would count as a kill)."""


RESUME_TESTS = ["tests/engine/test_resume_options.py", "tests/engine/test_resume.py", "tests/engine/test_engine.py"]
RESUME_ARGS = ["-k", "resum or cache"]

TARGETS = [
    Target("redis", "the Redis backend's Lua scripts (core/plait/tokens/redis.py)", "core/plait/tokens/redis.py",
           ["tests/tokens/test_tokens_redis.py"]),
    Target("allocator", "the token allocator (`Allocator` in core/plait/tokens/allocator.py)", "core/plait/tokens/allocator.py",
           ["tests/tokens/test_tokens.py"],
           ["Allocator.weight", "Allocator.cap", "Allocator.request", "Allocator.check", "Allocator.release",
            "Allocator.grant", "Allocator._take_from_bucket", "Allocator.next_refill", "Allocator.position"]),
    Target("compiler", "the compiler's type checks (core/plait/authoring/compiler.py)",
           "core/plait/authoring/compiler.py", ["tests/authoring/test_compiler.py", "tests/types/test_types.py"],
           ["check_spec", "_check_node", "_check_binding"]),
    Target("types", "the type-compatibility check the compiler calls (core/plait/types/engine.py)", "core/plait/types/engine.py",
           ["tests/authoring/test_compiler.py", "tests/types/test_types.py"], ["TypeEngine.castable", "TypeTransformer.castable"]),
    Target("engine-retry", "the engine's retry decisions (`run_task`, `backoff`, `_give_up` in core/plait/engine/execution.py)",
           "core/plait/engine/execution.py", ["tests/engine/test_engine.py", "tests/engine/test_engine_retry_rules.py", "tests/engine/test_resume.py"],
           ["_Execution.run_task", "_Execution.backoff", "_Execution._give_up"], timeout=240.0,
           args=["-k", "(retr or budget or permanent or dead_worker or secret or poll or backoff or fail or resum) "
                       "and not test_timeouts_abort_the_attempt_and_retry"]),
    Target("engine-resume", "what resume skips (`Engine.resume` in core/plait/engine/execution.py)",
           "core/plait/engine/execution.py", RESUME_TESTS, ["Engine.resume"], timeout=240.0, args=RESUME_ARGS),
    Target("engine-prior", "what resume reads of an earlier run (`_Prior.of` in core/plait/engine/prior.py)",
           "core/plait/engine/prior.py", RESUME_TESTS, ["_Prior.of"], timeout=240.0, args=RESUME_ARGS),
    Target("engine-items", "which map items a resume runs again (`_MapNode.run_item` in core/plait/engine/graph.py)",
           "core/plait/engine/graph.py", RESUME_TESTS, ["_MapNode.run_item"], timeout=240.0,
           args=RESUME_ARGS),  # run_item also reads the cache
]


def machine() -> str:
    cpus = len(os.sched_getaffinity(0))
    return f"{platform.processor() or platform.machine()}, {cpus} cores, Python {platform.python_version()}"


@dataclass
class Outcome:
    target: str
    name: str
    verdict: str  # killed, survived, timed out
    seconds: float
    detail: str = ""
    key: str = ""  # the mutant without its line number, for the notes in notes.py


def mutants_of(target: Target) -> list[tuple[str, str, str]]:
    """(name, key, mutated file text) for every mutant of ``target``."""
    text = (ROOT / target.file).read_text()
    if not target.functions:
        return [(m.name, m.name, lua.apply(text, m)) for m in lua.MUTATIONS]
    return [(m.name, m.key, m.source) for m in pymut.mutants(target.name, target.file, text, target.functions)]


def pytest_command(target: Target, basetemp: Path) -> list[str]:
    tests = [t for t in target.tests if (ROOT / t).exists()]
    return [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--basetemp", str(basetemp),
            "-o", f"timeout={int(target.timeout)}", *target.args, *tests]


def run_tests(target: Target, core: Path, file_text: str | None) -> tuple[str, float, str]:
    """Run ``target``'s tests against the copy of core/ at ``core`` (with ``file_text`` written)."""
    dest = core / Path(target.file).relative_to("core")
    original = dest.read_text()
    if file_text is not None:
        dest.write_text(file_text)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(core), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.monotonic()
    proc = subprocess.Popen(pytest_command(target, core.parent / "pytest-tmp"), cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=target.timeout)
        verdict = "survived" if proc.returncode == 0 else "killed"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        verdict = "timed out"
    finally:
        dest.write_text(original)
    failed = [line for line in out.splitlines() if line.startswith(("FAILED", "ERROR", "E  "))]
    return verdict, time.monotonic() - started, " | ".join(failed[:3]) or " | ".join(out.strip().splitlines()[-3:])


def run_target(target: Target, jobs: int, work: Path) -> tuple[list[Outcome], float]:
    copies = []
    for j in range(jobs):
        copy = work / f"{target.name}-{j}" / "core"
        shutil.copytree(ROOT / "core", copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        copies.append(copy)
    for _ in range(2):  # once more if it fails: other work on the machine can upset a timing
        verdict, seconds, detail = run_tests(target, copies[0], None)
        if verdict == "survived":
            break
        print(f"{target.name}: the tests fail without any mutant: {detail}", flush=True)
    else:
        raise SystemExit(f"{target.name}: the tests fail without any mutant ({detail}); fix them first")
    print(f"{target.name}: clean run {seconds:.0f}s", flush=True)
    mutants = mutants_of(target)
    free = list(copies)
    outcomes: list[Outcome] = []
    started = time.monotonic()

    def one(item: tuple[str, str, str]) -> Outcome:
        copy = free.pop()
        try:
            verdict, seconds, detail = run_tests(target, copy, item[2])
        finally:
            free.append(copy)
        print(f"  {verdict:9} {seconds:5.0f}s {item[0]}", flush=True)
        return Outcome(target.name, item[0], verdict, seconds, detail, item[1])

    with ThreadPoolExecutor(jobs) as pool:
        outcomes = list(pool.map(one, mutants))
    return outcomes, time.monotonic() - started


def tests_of(target: Target) -> str:
    return " ".join([*(t.removeprefix("tests/") for t in target.tests if (ROOT / t).exists()), *target.args])


def report(path: Path, results: dict[str, tuple[list[Outcome], float]], command: str, total: float,
           where: str | None = None, tests: dict[str, str] | None = None) -> None:
    """Write the report, and the raw results beside it (``--render`` rebuilds the report from them)."""
    by_name = {t.name: t for t in TARGETS}
    tests = {**{name: tests_of(by_name[name]) for name in results}, **(tests or {})}
    path.with_suffix(".json").write_text(json.dumps(
        {"command": command, "total": total, "machine": where or machine(), "tests": tests,
         "results": {k: [[o.__dict__ for o in v[0]], v[1]] for k, v in results.items()}}, indent=1))
    lines = ["# Mutation testing", "",
             "Written by `make mutate` (bench/mutate/run.py). Each mutant is one small change to one "
             "function (or one named change to the Redis backend's Lua); the target's tests run against "
             "it with `-x`. *Killed*: a test failed; *timed out*: the run passed its limit (also a "
             "detection); *survived*: every test passed, so no test notices that change.", "",
             f"- command: `{command}`",
             f"- machine: {where or machine()}",
             f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             f"- total run time: {total / 60:.1f} min", "",
             "| target | tests | mutants | killed | survived | timed out | run time |", "|---|---|---|---|---|---|---|"]
    for name, (outcomes, seconds) in results.items():
        count = {v: sum(o.verdict == v for o in outcomes) for v in ("killed", "survived", "timed out")}
        lines.append(f"| {by_name[name].what} | `{tests[name]}` | {len(outcomes)} | {count['killed']} | {count['survived']} "
                     f"| {count['timed out']} | {seconds / 60:.1f} min |")
    lines += ["", "## Surviving mutants", ""]
    for name, (outcomes, _) in results.items():
        survivors = [o for o in outcomes if o.verdict == "survived"]
        lines += [f"### {by_name[name].what}", ""]
        lines += [f"- {_described(o)}  \n  {NOTES.get(o.key, '(not yet judged)')}" for o in survivors] or ["None."]
        lines.append("")
    path.write_text("\n".join(lines))


def _described(outcome: Outcome) -> str:
    """A survivor as the report lists it; a Lua one with its exact text change."""
    change = next((m for m in lua.MUTATIONS if m.name == outcome.name), None)
    if change is None:
        return outcome.name
    before, after = (" ".join(text.split()) for text in change[1:])
    return f"{outcome.name}: `{before}` -> `{after or '(removed)'}`"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", choices=[t.name for t in TARGETS])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--report", default=None, help="write the report here (default: print only)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the targets already in the report's .json, run the others")
    parser.add_argument("--render", action="store_true",
                        help="only rebuild the report from its .json (after editing notes.py)")
    args = parser.parse_args()
    if args.render:
        path = ROOT / args.report
        saved = json.loads(path.with_suffix(".json").read_text())
        results = {k: ([Outcome(**o) for o in v[0]], v[1]) for k, v in saved["results"].items()}
        report(path, results, saved["command"], saved["total"], saved["machine"], saved.get("tests"))
        return
    chosen = [t for t in TARGETS if not args.target or t.name in args.target]
    started = time.monotonic()
    results = {}
    command = " ".join(["python", "bench/mutate/run.py", *sys.argv[1:]])
    ran_with: dict[str, str] = {}
    if args.resume and args.report and (ROOT / args.report).with_suffix(".json").exists():
        saved = json.loads((ROOT / args.report).with_suffix(".json").read_text())
        results = {k: ([Outcome(**o) for o in v[0]], v[1]) for k, v in saved["results"].items()}
        started -= saved["total"]
        ran_with = {k: v for k, v in saved.get("tests", {}).items() if k in results}
        command = saved["command"]
    with tempfile.TemporaryDirectory(prefix="plait-mutate-") as work:
        for target in chosen:
            if target.name in results:
                continue
            results[target.name] = run_target(target, args.jobs, Path(work))
            if args.report:  # after each target, so a long run shows its progress
                report(ROOT / args.report, results, command, time.monotonic() - started, tests=ran_with)
    total = time.monotonic() - started
    for name, (outcomes, seconds) in results.items():
        survived = [o.name for o in outcomes if o.verdict == "survived"]
        print(f"{name}: {len(outcomes)} mutants, {len(survived)} survived, {seconds / 60:.1f} min")
    if args.report:
        report(ROOT / args.report, results, command, total, tests=ran_with)


if __name__ == "__main__":
    main()
