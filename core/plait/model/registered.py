"""What a registration stores: the bodies of registered workflows and launch plans.

Entities are kept by :class:`plait.storage.entities.EntityStore` under (project, domain, kind,
name, version), with these models (as JSON) as their bodies:

- kind ``task``: the task's :class:`~plait.model.spec.TaskTemplate`, as compiled.
- kind ``workflow``: :class:`RegisteredWorkflow`: the compiled spec and the code archive its
  Python tasks import from (the content-addressed archive of :mod:`plait.runtime.code`, the
  one the Kubernetes platform ships to pods).
- kind ``launch_plan``: :class:`LaunchPlanSpec`: which workflow version, its default and fixed
  inputs, labels, parallelism and schedule. Registering a module registers a default launch
  plan for each workflow, named as the workflow, with no schedule.

Input values are stored as *literals*: the encoded form the queue and the engine use (what
:func:`plait.service.run.encode_inputs` returns), so launching never re-encodes them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from plait.model.wire import WireModel


class CodeRef(WireModel):
    """A workflow's code archive in the blob store: ``uri`` holds the archive with SHA-256
    ``digest``; the task refs' file paths are relative to ``root`` (``.``, the archive's top, as
    registration writes them: the same code registered from two checkouts is one content)."""

    digest: str
    uri: str
    root: str


class RegisteredWorkflow(WireModel):
    """A registered workflow version: its compiled spec, and its code (None: nothing to ship,
    every task's code is installed in the engine's and the image's environment)."""

    spec: dict[str, Any]
    code: CodeRef | None = None


class Schedule(WireModel):
    """When a launch plan fires by itself: a ``cron`` expression (five fields) read in
    ``timezone``, or a fixed rate of ``every_s`` seconds. ``fire_time_input``, when set, names
    the workflow input that receives the fire time. After downtime, ``catch_up`` ``all`` starts
    every missed fire time (at most ``max_catch_up``), ``latest`` only the most recent."""

    cron: str | None = None
    timezone: str = "UTC"
    every_s: float | None = Field(default=None, gt=0)
    fire_time_input: str | None = None
    catch_up: Literal["all", "latest"] = "latest"
    max_catch_up: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _one_kind(self) -> Schedule:
        if (self.cron is None) == (self.every_s is None):
            raise ValueError("a schedule has either a cron expression or a fixed rate (every_s), not both or neither")
        return self


class LaunchPlanSpec(WireModel):
    """A launch plan version: the workflow version it launches and how."""

    name: str
    workflow: str
    workflow_version: str
    default_inputs: dict[str, Any] = Field(default_factory=dict)
    """Literals a launch may override."""
    fixed_inputs: dict[str, Any] = Field(default_factory=dict)
    """Literals a launch may not override."""
    labels: dict[str, str] = Field(default_factory=dict)
    max_parallelism: int | None = Field(default=None, ge=1)
    schedule: Schedule | None = None
