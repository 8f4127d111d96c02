"""One task in a workflow, for `pyflyte run` or `python flyte_one.py` in a fresh process."""

from __future__ import annotations

from flytekit import task, workflow


@task
def double(x: int) -> int:
    return 2 * x


@workflow
def one(x: int = 21) -> int:
    return double(x=x)


if __name__ == "__main__":
    print(one(x=21))
