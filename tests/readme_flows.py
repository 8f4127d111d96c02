"""Workflows for README claims the engine tests check (a module, so worker processes can import it)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import plait
from plait import current_context


def _append(path: str, line: str) -> int:
    with open(path, "a") as fh:
        fh.write(line + "\n")
    return len(Path(path).read_text().splitlines())


@plait.task
def items(n: int) -> list[int]:
    return list(range(n))


@plait.task(retries=1)
def asks_for_a_retry(marker: str) -> int:
    _append(marker, "attempt")
    raise plait.RetryableError("the service is busy")


@plait.workflow
def retryable_wf(marker: str) -> int:
    return asks_for_a_retry(marker=marker)


@plait.task  # system_retries left at its default
def always_dies(marker: str) -> int:
    _append(marker, str(os.getpid()))
    os._exit(17)


@plait.workflow
def always_dies_wf(marker: str) -> int:
    return always_dies(marker=marker)


@plait.task
def one_at_a_time(i: int, log: str, seconds: float) -> int:
    _append(log, f"start {i}")
    time.sleep(seconds)
    _append(log, f"end {i}")
    return i


@plait.workflow
def serial_map(n: int, log: str, seconds: float) -> list[int]:
    return plait.map(one_at_a_time, over=items(n=n), log=log, seconds=seconds, concurrency=1)


@plait.task
def scale(x: int, factor: int) -> int:
    return x * factor


@plait.workflow
def named_over(x: int, factors: list[int]) -> list[int]:
    return plait.map(scale, over={"factor": factors}, x=x)


@plait.task
def whoami(i: int) -> list[str]:
    ctx = current_context()
    scratch = ctx.scratch
    (scratch / "mine").write_text(str(i))
    return [ctx.execution_id, ctx.node_id, ctx.attempt_id, str(ctx.attempt), str(ctx.item_index), str(scratch),
            str(sorted(p.name for p in scratch.iterdir()))]


@plait.workflow
def context_map(n: int) -> list[list[str]]:
    return plait.map(whoami, over=items(n=n))


@plait.task(retries=1)
def item_checkpoint(i: int) -> str:
    """The first attempt of each item saves its own text and fails; the retry returns what it restores."""
    ctx = current_context()
    saved = ctx.checkpoint.restore()
    if saved is None:
        ctx.checkpoint.save(f"saved by item {i}".encode())
        raise RuntimeError(f"item {i} fails once")
    return saved.decode()


@plait.workflow
def checkpointed_map(n: int) -> list[str]:
    return plait.map(item_checkpoint, over=items(n=n))


@plait.task(retries=3)
def fails_three_times(marker: str) -> int:
    if _append(marker, "attempt") <= 3:
        raise RuntimeError("not yet")
    return 4


@plait.workflow
def backoff_wf(marker: str) -> int:
    return fails_three_times(marker=marker)


@plait.task(cache=True, cache_version="1")
def count_lines(f: plait.File, marker: str) -> int:
    _append(marker, "ran")
    return len(f.read_text().splitlines())


@plait.workflow
def cached_lines(f: plait.File, marker: str) -> int:
    return count_lines(f=f, marker=marker)
