"""The peer benchmark's workloads in plait; `flyte_flows.py` holds the same in flytekit.

The chain of 100 and the map's tasks are those of the other benchmarks (`bench/flows.py`);
the map ends in a sum here, so both tools' results can be checked.
"""

from __future__ import annotations

import plait
from flows import chain100, count, identity

__all__ = ["chain100", "mapped"]


@plait.task
def total(xs: list[int]) -> int:
    return sum(xs)


@plait.workflow
def mapped(n: int) -> int:
    return total(xs=plait.map(identity, over=count(n=n)))
