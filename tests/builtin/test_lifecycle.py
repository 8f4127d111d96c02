"""The lifecycle suite of plait.testing, run on the built-in task types."""

from __future__ import annotations

from pathlib import Path

import flows
from plait.builtin.container_task import ContainerTask
from plait.builtin.python_task import PythonTask
from plait.testing.lifecycle import LifecycleCase, TaskTypeLifecycleTests
from plait.types.engine import engine


def _starts(marker: Path):
    return lambda: len(marker.read_text().splitlines()) if marker.exists() else 0


class TestPythonTaskInWorkerProcesses(TaskTypeLifecycleTests):
    def case(self, tmp_path: Path) -> LifecycleCase:
        marker = tmp_path / "starts"
        return LifecycleCase(
            new_task_type=PythonTask,
            quick=flows.add.template, quick_inputs={"a": 2, "b": 3}, expected_outputs={"o0": 5},
            slow=flows.slow.template, slow_inputs={"seconds": 300.0, "marker": str(marker)},  # aborted by every test: outlasts the attach tests' watch (twice its start)
            starts=_starts(marker),
            attaches_after_restart=False,  # its worker pool lives and dies with the engine
        )


slow_container = __import__("plait").container_task(
    "sleeper", image="debian:bookworm-slim",
    command=["sh", "-c", "echo started >> {{inputs.marker}}; sleep 300; echo 1 > {{outputs}}/n"],
    inputs={"marker": str}, outputs={"n": int},
)


class TestContainerTask(TaskTypeLifecycleTests):
    def case(self, tmp_path: Path) -> LifecycleCase:
        engine()  # load plugins so templates can be built
        marker = tmp_path / "starts"
        return LifecycleCase(
            new_task_type=ContainerTask,
            quick=flows.echo_container.template, quick_inputs={"word": "abc"},
            expected_outputs={"shout": "ABC", "n": 42},
            slow=slow_container.template, slow_inputs={"marker": str(marker)},
            starts=_starts(marker),
        )
