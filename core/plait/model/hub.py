"""A hub bundle's manifest: what a published workflow is, and the digest of every file it holds.

A bundle is a folder ``<name>/<version>/`` of files (see :data:`BUNDLE_FILES`) beside
``manifest.json``; the manifest names the bundle, summarises its typed interface for a reader
choosing one, and records the SHA-256 of every other file. An importer checks every digest
before anything is registered, so a bundle changed after it was published is refused, naming
the file. The manifest holds no time and no publisher, so publishing the same workflow twice
makes the same manifest: one content per ``name@version``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from plait.model.wire import WireModel

MANIFEST = "manifest.json"
WORKFLOW = "workflow.json"
"""The compiled workflow (:class:`~plait.model.spec.WorkflowSpec` as JSON)."""
TASKS = "tasks.json"
"""The task templates the workflow uses, a JSON list sorted by name."""
LAUNCH_PLAN = "launch_plan.json"
"""The launch-plan template (:class:`PlanTemplate`)."""
CODE = "code.tar.gz"
"""The registration's content-addressed code archive (absent when no task's code is shipped)."""
README = "README.md"

BUNDLE_FILES = (WORKFLOW, TASKS, LAUNCH_PLAN, CODE, README)
"""Every file a bundle may hold besides its manifest; nothing else is read from a bundle."""


class PlanTemplate(WireModel):
    """How an imported bundle is launched: the launch plan registered under the bundle's name,
    less what belongs to the project importing it (a schedule: an import never starts firing)."""

    default_inputs: dict[str, Any] = Field(default_factory=dict)
    """Literals a launch may override."""
    fixed_inputs: dict[str, Any] = Field(default_factory=dict)
    """Literals a launch may not override."""
    labels: dict[str, str] = Field(default_factory=dict)
    max_parallelism: int | None = None


class BundleInput(BaseModel):
    """One input of the bundle's workflow, as a reader choosing a bundle sees it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: str
    default: Any = None
    """The literal a launch gets when it gives none (the plan's, else the workflow's)."""
    required: bool = False
    fixed: bool = False


class Manifest(WireModel):
    """A bundle's identity, interface summary and file digests."""

    name: str
    version: str
    """A semantic version (``1.0.0``, ``2.1.0-rc.1``)."""
    workflow: str
    """The workflow's registered name (its tasks keep theirs)."""
    description: str = ""
    """The README's first line of prose."""
    inputs: list[BundleInput] = Field(default_factory=list)
    """By name: a registered spec keeps no order (its JSON is stored with sorted keys)."""
    outputs: dict[str, str] = Field(default_factory=dict)
    """Output name to type, as :meth:`~plait.model.typespec.TypeSpec.describe` writes it."""
    tasks: list[str] = Field(default_factory=list)
    images: list[str] = Field(default_factory=list)
    """The container images the tasks name (none: they run in the engine's environment)."""
    code: str | None = None
    """The code archive's SHA-256, also its name in every blob store it is registered into."""
    files: dict[str, str]
    """Each file of the bundle (:data:`BUNDLE_FILES`) and its SHA-256."""

    def signature(self) -> str:
        """``photos: int = 2000, ... -> Report``: the interface on one line."""
        args = []
        for given in self.inputs:
            shown = f"{given.name}: {given.type}"
            if given.fixed:
                shown += f" (fixed {given.default!r})"
            elif not given.required:
                shown += f" = {given.default!r}"
            args.append(shown)
        outputs = ", ".join(self.outputs.values()) or "None"
        return f"({', '.join(args)}) -> {outputs}"


# -- the server's hub routes ---------------------------------------------------------------------


class BundleOut(BaseModel):
    """One bundle of a server's hub, as a reader sees it before importing."""

    manifest: Manifest
    readme: str
    signature: str = Field(description="The interface on one line: (name: type = default, ...) -> outputs")


class PublishIn(BaseModel):
    """Publish a workflow registered in the project's domain as ``name@version``."""

    workflow: str = Field(description="The workflow's name (or the last part of its dotted name)")
    version: str = Field(description="The bundle's semantic version")
    workflow_version: str | None = Field(default=None, description="Default: the latest registered")
    name: str | None = Field(default=None, description="Default: the last part of the workflow's name")
    launch_plan: str | None = Field(default=None, description="Whose inputs the bundle's plan takes; "
                                                                "default: the workflow's own plan")
    readme: str | None = Field(default=None, description="Default: the workflow's and its module's docstrings")


class PublishedOut(BaseModel):
    manifest: Manifest
    status: Literal["created", "unchanged"]
    hub: str


class ExportOut(BaseModel):
    """A bundle's files (base64), to publish in a folder or Git hub."""

    manifest: Manifest
    files: dict[str, str]
