"""A task type for the pools page's test: the python task type, holding one token of the pool
``svc:console`` per attempt. The test installs it as a plugin (an entry point of a fake
distribution) into the server's and the command line's path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plait.builtin.python_task import PythonTask
from plait.sdk import TaskType, hookimpl


class PooledPython(PythonTask):
    name = "pooled"

    def pools(self, task: Any, config: Any) -> dict[str, int]:
        return {"svc:console": 1}


@hookimpl
def plait_task_types(register: Callable[[TaskType], None]) -> None:
    register(PooledPython())
