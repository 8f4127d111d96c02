"""Tasks and workflows the tests run (a module, so worker processes can import it)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import plait
from plait import File, current_context


@plait.task
def add(a: int, b: int) -> int:
    return a + b


@plait.task
def double(x: int) -> int:
    return 2 * x


@plait.task
def total(xs: list[int]) -> int:
    return sum(xs)


@plait.task
def to_text(x: int) -> str:
    return str(x)


@plait.workflow
def arithmetic(a: int, b: int = 2) -> int:
    return double(x=add(a=a, b=b))


@plait.workflow
def fan_out(n: int) -> int:
    return total(xs=plait.map(double, over=numbers(n=n)))


@plait.task
def numbers(n: int) -> list[int]:
    return list(range(n))


@plait.workflow
def nested(a: int) -> int:
    return double(x=arithmetic(a=a, b=1))


class Stats(NamedTuple):
    count: int
    mean: float


@plait.task
def stats(xs: list[int]) -> Stats:
    return Stats(len(xs), sum(xs) / len(xs))


@plait.workflow
def two_outputs(n: int) -> Stats:
    s = stats(xs=numbers(n=n))
    return s.count, s.mean


def _bump(path: str) -> int:
    """Append a line to ``path`` and return how many lines it has: a cross-process counter."""
    with open(path, "a") as fh:
        fh.write(f"{os.getpid()}\n")  # the pid, so tests can check the process is gone
    return len(Path(path).read_text().splitlines())


@plait.task(retries=2)
def flaky(marker: str, fail_times: int) -> int:
    calls = _bump(marker)
    if calls <= fail_times:
        raise RuntimeError(f"flaky failure number {calls}")
    return calls


@plait.workflow
def flaky_wf(marker: str, fail_times: int) -> int:
    return flaky(marker=marker, fail_times=fail_times)


@plait.task(retries=5)
def permanent(marker: str) -> int:
    _bump(marker)
    raise plait.PermanentError("the input can never work")


@plait.workflow
def permanent_wf(marker: str) -> int:
    return permanent(marker=marker)


@plait.task(retries=0, system_retries=2)
def dies(marker: str) -> int:
    """Kill our own worker process on the first two attempts: a system failure."""
    if _bump(marker) <= 2:
        os._exit(17)
    return 42


@plait.workflow
def dies_wf(marker: str) -> int:
    return dies(marker=marker)


@plait.task(timeout=2.0, retries=1)
def sleepy(seconds: float, marker: str) -> int:
    _bump(marker)
    time.sleep(seconds)
    return 1


@plait.workflow
def sleepy_wf(seconds: float, marker: str) -> int:
    return sleepy(seconds=seconds, marker=marker)


@plait.task
def slow(seconds: float, marker: str) -> int:
    _bump(marker)
    time.sleep(seconds)
    return 1


@plait.workflow
def two_slow(seconds: float, marker: str) -> int:
    return add(a=slow(seconds=seconds, marker=marker), b=slow(seconds=seconds, marker=marker))


@plait.task(cache=True, cache_version="1")
def cached_square(x: int, marker: str) -> int:
    _bump(marker)
    return x * x


@plait.workflow
def cached_wf(x: int, marker: str) -> int:
    return cached_square(x=x, marker=marker)


@plait.task(retries=3)
def resumable(steps: int, fail_at: int, log: str) -> list[int]:
    """Count to ``steps``, checkpointing each step; the first attempt dies at ``fail_at``."""
    ctx = current_context()
    saved = ctx.checkpoint.restore()
    start = int(saved.decode()) if saved else 0
    with open(log, "a") as fh:
        fh.write(f"attempt {ctx.attempt} starts at {start}\n")
    done = list(range(start))
    for step in range(start, steps):
        if ctx.attempt == 1 and step == fail_at:
            raise RuntimeError(f"crash at step {step}")
        done.append(step)
        ctx.checkpoint.save(str(step + 1).encode())
    return done


@plait.workflow
def resumable_wf(steps: int, fail_at: int, log: str) -> list[int]:
    return resumable(steps=steps, fail_at=fail_at, log=log)


@plait.task
def fail_on(x: int, bad: list[int]) -> int:
    if x in bad:
        raise ValueError(f"item {x} is bad")
    return x


@plait.workflow
def partial_map(n: int, bad: list[int]) -> list[int | None]:
    return plait.map(fail_on, over=numbers(n=n), bad=bad, min_success_ratio=0.5)


@plait.workflow
def strict_map(n: int, bad: list[int]) -> list[int]:
    return plait.map(fail_on, over=numbers(n=n), bad=bad)


@plait.task
def boom(x: int) -> int:
    raise ValueError("boom")


@plait.workflow
def branches(x: int, seconds: float, marker: str) -> int:
    failed = boom(x=x)
    survivor = slow(seconds=seconds, marker=marker)
    return add(a=survivor, b=double(x=failed))


@plait.task
def noisy(x: int) -> int:
    print(f"hello from stdout {x}")
    import sys

    print(f"hello from stderr {x}", file=sys.stderr)
    return x


@plait.workflow
def noisy_wf(x: int) -> int:
    return noisy(x=x)


@plait.dynamic
def dynamic_total(n: int) -> int:
    values = [double(x=i) for i in range(n)]
    return total(xs=values)


@plait.workflow
def dynamic_wf(n: int) -> int:
    return dynamic_total(n=n)


@plait.dynamic
def dynamic_bad(n: int) -> int:
    return to_text(x=n)  # a str where an int is declared: caught before anything runs


@plait.workflow
def dynamic_bad_wf(n: int) -> int:
    return dynamic_bad(n=n)


@plait.task
def make_frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": list(range(n)), "y": [i * 0.5 for i in range(n)]})


@plait.task
def frame_sum(df: pd.DataFrame) -> float:
    return float(df["y"].sum())


@plait.workflow
def frames(n: int) -> float:
    return frame_sum(df=make_frame(n=n))


@plait.task
def write_file(text: str) -> File:
    path = current_context().scratch / "out.txt"
    path.write_text(text)
    return File(path)


@plait.task
def read_file(f: File) -> str:
    return f.read_text().upper()


@plait.workflow
def files(text: str) -> str:
    return read_file(f=write_file(text=text))


@dataclass
class Point:
    x: int
    y: float


@plait.task
def move(p: Point, dx: int) -> Point:
    return Point(p.x + dx, p.y)


@plait.workflow
def points(p: Point) -> Point:
    return move(p=p, dx=1)


echo_container = plait.container_task(
    "echo-upper",
    image="debian:bookworm-slim",
    command=["sh", "-c", "printf '%s' '{{inputs.word}}' | tr a-z A-Z > {{outputs}}/shout; echo 42 > {{outputs}}/n"],
    inputs={"word": str},
    outputs={"shout": str, "n": int},
)


@plait.workflow
def container_wf(word: str) -> str:
    out = echo_container(word=word)
    return to_text(x=out.n)


@plait.task
def stamp(marker: str) -> int:
    _bump(marker)
    return 0


@plait.task
def slow_item(x: int, marker: str, seconds: float) -> int:
    with open(marker, "a") as fh:
        fh.write(f"{x}\n")
    time.sleep(seconds)
    return x


@plait.workflow
def crashable(n: int, marker: str, first_marker: str, seconds: float) -> int:
    start = stamp(marker=first_marker)
    items = plait.map(slow_item, over=numbers(n=add(a=n, b=start)), marker=marker, seconds=seconds)
    return total(xs=items)


slow_container_task = plait.container_task(
    "slow-echo", image="debian:bookworm-slim",
    command=["sh", "-c", "echo $$ >> {{inputs.marker}}; sleep {{inputs.seconds}}; echo 7 > {{outputs}}/n"],
    inputs={"marker": str, "seconds": int}, outputs={"n": int},
)


@plait.workflow
def container_then_double(marker: str, seconds: int) -> int:
    return double(x=slow_container_task(marker=marker, seconds=seconds))


@plait.task(env={"GREETING": "howdy"}, secrets=["api-token"])
def uses_env_and_secret(name: str) -> str:
    token = current_context().secret("api-token")
    return f"{os.environ['GREETING']} {name}, token has {len(token)} characters"


@plait.workflow
def env_and_secret(name: str) -> str:
    return uses_env_and_secret(name=name)


@plait.task(retries=1)
def resumable_dir(log: str) -> list[str]:
    """Save a folder of results before failing; the retry restores the folder."""
    ctx = current_context()
    work = ctx.scratch / "work"
    restored = ctx.checkpoint.restore_dir(work)
    with open(log, "a") as fh:
        fh.write(f"attempt {ctx.attempt} restored={restored}\n")
    work.mkdir(exist_ok=True)
    (work / f"part-{ctx.attempt}.txt").write_text(f"from attempt {ctx.attempt}")
    ctx.checkpoint.save_dir(work)
    if ctx.attempt == 1:
        raise RuntimeError("crash after saving part 1")
    return sorted(p.read_text() for p in work.iterdir())


@plait.workflow
def resumable_dir_wf(log: str) -> list[str]:
    return resumable_dir(log=log)


@plait.task
def big_text(i: int) -> str:
    return "x" * (1 << 20) + str(i)  # over the inline limit: offloaded to the blob store on its own


@plait.task
def lengths(texts: list[str]) -> list[int]:
    return [len(t) for t in texts]


@plait.workflow
def big_values(n: int) -> list[int]:
    return lengths(texts=plait.map(big_text, over=numbers(n=n)))


@plait.workflow
def cached_map(n: int, marker: str) -> list[int]:
    return plait.map(cached_square, over=numbers(n=n), marker=marker)


@plait.task
def where_a_file_lands(f: File) -> str:
    """Where a File given to a task is downloaded: the attempt's scratch folder."""
    return f"{f.path}|{current_context().scratch}"


@plait.workflow
def file_landing(text: str) -> str:
    return where_a_file_lands(f=write_file(text=text))


@plait.task(retries=2)
def flaky_item(x: int, marker_dir: str) -> int:
    """Item 3 fails on its first attempt only; every attempt of every item is counted."""
    if _bump(f"{marker_dir}/item-{x}") == 1 and x == 3:
        raise ValueError("item 3 fails once")
    print(f"item {x} says hello")
    return x * 10


@plait.workflow
def flaky_map(n: int, marker_dir: str) -> list[int]:
    return plait.map(flaky_item, over=numbers(n=n), marker_dir=marker_dir)


line_counter = plait.container_task(
    "line-counter", image="busybox:1.36",
    command=["sh", "-c", "wc -l < {{inputs.text}} | tr -d ' ' > {{outputs}}/lines; "
             "tr a-z A-Z < {{inputs.text}} > {{outputs}}/shouted; echo counted {{inputs.text}}"],
    inputs={"text": File}, outputs={"lines": int, "shouted": File},
)


@plait.task
def describe(lines: int, f: File) -> str:
    return f"{lines} lines: {' '.join(f.read_text().split())}"


@plait.workflow
def count_lines(text: str) -> str:
    out = line_counter(text=write_file(text=text))
    return describe(lines=out.lines, f=out.shouted)


failing_container = plait.container_task(
    "fails", image="busybox:1.36", command=["sh", "-c", "echo about to fail {{inputs.x}}; exit 3"],
    inputs={"x": int}, outputs={"n": int},
)


@plait.workflow
def container_fails(x: int) -> int:
    return failing_container(x=x)
