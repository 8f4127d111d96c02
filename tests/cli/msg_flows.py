"""Workflows for the message tests (tests/cli/test_local_messages.py, tests/server/test_cli_messages.py):
a task error with brackets in it, and a task that succeeds."""

import plait


@plait.task(retries=0)
def opener(path: str) -> int:
    raise RuntimeError(f"cannot open [{path}] for 13")


@plait.workflow
def broken(path: str) -> int:
    return opener(path=path)


@plait.task
def double(a: int) -> int:
    return 2 * a


@plait.workflow
def doubled(a: int) -> int:
    return double(a=a)
