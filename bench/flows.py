"""Workflows the benchmarks run (a module, so worker processes can import them)."""

from __future__ import annotations

import plait


@plait.task
def identity(x: int) -> int:
    return x


@plait.task
def count(n: int) -> list[int]:
    return list(range(n))


@plait.task
def size(xs: list[int]) -> int:
    return len(xs)


@plait.workflow
def trivial_map(n: int) -> int:
    return size(xs=plait.map(identity, over=count(n=n)))


@plait.task
def inc(x: int) -> int:
    return x + 1


@plait.workflow
def chain100(x: int = 0) -> int:
    for _ in range(100):
        x = inc(x=x)
    return x


def burn(ms: float) -> int:
    """About ``ms`` milliseconds of pure-Python work."""
    total = 0
    for i in range(int(ms * 13_000)):
        total += i * i % 7
    return total


@plait.task
def cpu(i: int) -> int:
    return burn(20.0) + i


@plait.workflow
def cpu_map(n: int = 200) -> int:
    return size(xs=plait.map(cpu, over=count(n=n)))
