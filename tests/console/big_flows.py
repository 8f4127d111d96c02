"""A workflow of 1,001 nodes (20 chains of 50 steps, joined by one last task), for the
console's page-weight test and bench/console_render.py: its graph page must stay light."""

from __future__ import annotations

import plait

CHAINS, STEPS = 20, 50


@plait.task
def step(x: int) -> int:
    return x + 1


@plait.task
def total(xs: list[int]) -> int:
    return sum(xs)


@plait.workflow
def thousand(a: int = 0) -> int:
    """Twenty chains of fifty steps, summed."""
    ends = []
    for _ in range(CHAINS):
        value = a
        for _ in range(STEPS):
            value = step(x=value)
        ends.append(value)
    return total(xs=ends)
