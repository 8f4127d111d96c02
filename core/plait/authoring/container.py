"""``container_task``: a task that runs a command line, in an image on Kubernetes.

Its configuration lives here, with the other authoring helpers, so that ``import plait``
imports no plugin module; the ``container`` task type that runs it is
:mod:`plait.builtin.container_task`.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

from plait.authoring.decorators import Task, external_task
from plait.plugins.tasktype import TaskConfig


class Container(TaskConfig):
    """Configuration of a container task."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    task_type = "container"

    image: str
    command: list[str]
    env: dict[str, str] = {}


def container_task(
    name: str,
    *,
    image: str,
    command: list[str],
    inputs: dict[str, Any] | None = None,
    outputs: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    **options: Any,
) -> Task[Any]:
    """A task that runs a command line (in ``image`` on Kubernetes, as a process locally).

    ``{{inputs.x}}`` in ``command`` becomes input ``x``; ``{{outputs}}`` a folder where the
    command writes one file per output, named after it (text for ``str``, JSON otherwise,
    the file itself for ``File``).
    """
    config = Container(image=image, command=command, env=env or {})
    return external_task(name, config, inputs=inputs, outputs=outputs, **options)

