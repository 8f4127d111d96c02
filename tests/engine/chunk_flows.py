"""Maps whose items run in chunks (a module, so worker processes can import it)."""

from __future__ import annotations

import os
from pathlib import Path

import plait


def _first_time(marker: str) -> bool:
    """True the first time it is asked for ``marker`` (in any process): a file records it."""
    try:
        Path(marker).touch(exist_ok=False)
    except FileExistsError:
        return False
    return True


@plait.task
def numbers(n: int) -> list[int]:
    return list(range(n))


@plait.task
def double(x: int) -> int:
    return 2 * x


@plait.task(retries=1)
def fails_once_at(x: int, at: int, marker: str) -> int:
    if x == at and _first_time(marker):
        raise ValueError(f"item {x} fails its first attempt")
    return 2 * x


@plait.task
def always_fails_at(x: int, at: int) -> int:
    if x == at:
        raise ValueError(f"item {x} always fails")
    return 2 * x


@plait.task
def kills_its_worker_at(x: int, at: int, marker: str) -> int:
    if x == at and _first_time(marker):
        os._exit(3)  # the worker process dies in the middle of its chunk
    return 2 * x


@plait.task
def says_its_index(x: int) -> int:
    print(f"item {x} here" + "!" * (x % 5))  # lengths that go up and down: nothing of another's shows
    return x


@plait.task(timeout=60)
def double_with_a_timeout(x: int) -> int:
    return 2 * x


@plait.workflow
def doubled(n: int) -> list[int]:
    return plait.map(double, over=numbers(n=n))


@plait.workflow
def doubled_fails_once(n: int, at: int, marker: str) -> list[int]:
    return plait.map(fails_once_at, over=numbers(n=n), at=at, marker=marker)


@plait.workflow
def doubled_always_fails(n: int, at: int) -> list[int]:
    return plait.map(always_fails_at, over=numbers(n=n), at=at)


@plait.workflow
def doubled_worker_dies(n: int, at: int, marker: str) -> list[int]:
    return plait.map(kills_its_worker_at, over=numbers(n=n), at=at, marker=marker)


@plait.workflow
def chatty(n: int) -> list[int]:
    return plait.map(says_its_index, over=numbers(n=n))


@plait.workflow
def doubled_with_a_timeout(n: int) -> list[int]:
    return plait.map(double_with_a_timeout, over=numbers(n=n))
