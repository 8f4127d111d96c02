"""The peer benchmark's workloads in flytekit, as its documentation writes them.

The map is ``map_task``, flytekit's map: locally it runs the items one after another in this
process (0.5 ms an item here), where a ``@dynamic`` calling the task per item took 10 ms.
"""

from __future__ import annotations

from flytekit import map_task, task, workflow


@task
def inc(x: int) -> int:
    return x + 1


@workflow
def chain100(x: int = 0) -> int:
    for _ in range(100):
        x = inc(x=x)
    return x


@task
def count(n: int) -> list[int]:
    return list(range(n))


@task
def identity(x: int) -> int:
    return x


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@workflow
def mapped(n: int) -> int:
    return total(xs=map_task(identity)(x=count(n=n)))
