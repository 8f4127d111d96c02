"""A workflow of one task with an inline output: what the cold-start test and bench run."""

import plait


@plait.task
def one() -> int:
    return 1


@plait.workflow
def wf() -> int:
    return one()
