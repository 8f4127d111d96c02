"""Launching: compile a workflow, encode its inputs and queue an execution for an engine to claim."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plait.authoring.decorators import Workflow
from plait.engine.execution import new_execution_id
from plait.model.settings import Settings
from plait.service.run import encode_inputs, stored_options
from plait.storage.blobs import BlobStore
from plait.storage.events import EventStore
from plait.storage.queue import ExecutionQueue


@dataclass
class LaunchOptions:
    """How a queued execution is to run; stored with it, read by the engine that claims it."""

    inline: bool = False
    fail_fast: bool = True
    overwrite_cache: bool = False
    priority: int = 0
    platform: str = "local"
    project: str = "default"
    domain: str = "development"

    def stored(self) -> dict[str, Any]:
        """The run options as the queue keeps them (the tenant is on the executions row)."""
        return stored_options(self)


@dataclass
class _Blobs:
    """What :func:`encode_inputs` needs of an engine: its blob store."""

    blobs: BlobStore


def launch(workflow: Workflow, inputs: dict[str, Any] | None, options: LaunchOptions | None, store: EventStore,
           blobs: BlobStore | None = None, execution_id: str | None = None) -> str:
    """Queue an execution of ``workflow``; returns its id. It runs when an engine claims it
    (``plait engine``). Inputs are checked and encoded now, so a bad one fails here."""
    options = options or LaunchOptions()
    spec = workflow.spec  # compiling checks the graph before anything is queued
    blobs = blobs or BlobStore(Settings.from_env().blob_url)
    literals = encode_inputs(workflow, inputs or {}, _Blobs(blobs))  # type: ignore[arg-type]
    literals = {**spec.defaults, **literals}
    xid = execution_id or new_execution_id()
    ExecutionQueue(store).enqueue(xid, spec, literals, options.stored(), options.project, options.domain)
    return xid
