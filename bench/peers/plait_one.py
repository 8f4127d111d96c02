"""One task in a workflow, for `plait run` in a fresh process (the peer benchmark's cold start)."""

from __future__ import annotations

import plait


@plait.task
def double(x: int) -> int:
    return 2 * x


@plait.workflow
def one(x: int = 21) -> int:
    return double(x=x)
