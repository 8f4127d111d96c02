"""Workflows the command-line tests run through ``plait run`` (a module of its own, so worker
processes can import it by name and the other flow modules stay untouched)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import plait


def _record_pid(marker: str) -> int:
    """Append this process's id to ``marker``; return how many lines the marker then has."""
    with open(marker, "a") as fh:
        fh.write(f"{os.getpid()}\n")
    return len(Path(marker).read_text().splitlines())


@plait.task
def where_am_i(marker: str) -> int:
    _record_pid(marker)
    return os.getpid()


@plait.workflow
def pid_wf(marker: str) -> int:
    return where_am_i(marker=marker)


@plait.task
def count_to(n: int) -> list[int]:
    return list(range(n))


@plait.task
def rendezvous(i: int, marker: str, party: int) -> int:
    """Record this worker's pid, then wait (at most 20 s) until ``party`` attempts have started.

    Attempts that wait here hold their worker, so ``party`` of them can only meet when at
    least ``party`` workers run at once.
    """
    _record_pid(marker)
    deadline = time.monotonic() + 20
    while len(Path(marker).read_text().splitlines()) < party and time.monotonic() < deadline:
        time.sleep(0.02)
    return os.getpid()


@plait.workflow
def worker_pids(n: int, marker: str, party: int) -> list[int]:
    return plait.map(rendezvous, over=count_to(n=n), marker=marker, party=party)


@plait.task(cache=True, cache_version="1")
def read_cached(path: str, marker: str) -> str:
    """Return the text of ``path``: the cache key holds the path, not the text, so a cached
    result shows which run's text was stored."""
    _record_pid(marker)
    return Path(path).read_text()


@plait.workflow
def cached_read(path: str, marker: str) -> str:
    return read_cached(path=path, marker=marker)


@plait.task
def fine(x: int) -> int:
    return x + 1


@plait.task
def total(xs: list[int]) -> int:
    return sum(xs)


@plait.workflow
def mapped(n: int) -> int:
    return total(xs=plait.map(fine, over=count_to(n=n)))


@plait.task
def as_text(x: int) -> str:
    return str(x)


@plait.workflow
def mismatched(x: int) -> int:
    return fine(x=as_text(x=x))  # a str where an int is expected: a compile error when run


@plait.task
def weigh(counts: dict[str, int], sizes: list[float]) -> float:
    return sum(counts.values()) * sum(sizes)


@plait.workflow
def structured(counts: dict[str, int], sizes: list[float]) -> float:
    return weigh(counts=counts, sizes=sizes)
