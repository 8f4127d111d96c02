"""Launching over the API: launch a registered launch plan or workflow, abort, relaunch, recover."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class LaunchIn(BaseModel):
    """What to launch: a launch plan or a workflow (by name; one of the two), which version
    (None: the launch plan's active version, or the workflow's latest), its inputs (JSON
    values by input name; a launch plan's defaults fill the rest) and tags. Unknown fields are
    refused (a typo such as ``input`` would otherwise launch with the defaults)."""

    model_config = ConfigDict(extra="forbid")

    launch_plan: str | None = None
    workflow: str | None = None
    version: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    text_inputs: dict[str, str] = Field(default_factory=dict, description=(
        "Inputs as typed on a command line (`--name value`), read by their declared types"))
    tags: list[str] = Field(default_factory=list)


class RelaunchIn(BaseModel):
    """A relaunch's changes: inputs to give other values (the rest are the execution's), and tags."""

    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)


class LaunchedOut(BaseModel):
    """The execution a launch, relaunch or recover started, and where the API shows it."""

    execution_id: str
    url: str


class AbortOut(BaseModel):
    """What an abort did: ``aborted`` (it was still queued: aborted now), ``requested`` (the
    engine running it aborts it within seconds) or ``ended`` (it had ended: nothing to abort)."""

    execution_id: str
    outcome: Literal["aborted", "requested", "ended"]
    url: str
