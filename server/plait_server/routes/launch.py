"""Launching: start a registered launch plan or workflow; abort, relaunch and recover an execution.

A launch needs the launcher role in its project. Routes addressed by an execution's id check
the caller's role in that execution's project; a caller with no role there is told ``no
execution 'ID'``, as if it did not exist.
"""

from __future__ import annotations

import os

from fastapi import APIRouter, HTTPException, Request
from plait.model.api.launch import AbortOut, LaunchedOut, LaunchIn, RelaunchIn
from plait.service.remote_launch import launch_registered, recover, relaunch
from plait.storage.events import EventStore
from plait.storage.queue import ExecutionQueue

from plait_server import workers  # noqa: F401  (the engine workers run beside these routes)
from plait_server.app import API
from plait_server.auth import CurrentUser, Launcher
from plait_server.routes.executions import LaunchedExecution

router = APIRouter(prefix=API, tags=["launch"])
ORDER = 35


def _store(request: Request) -> EventStore:
    store: EventStore = request.app.state.store
    return store


def _launched(xid: str) -> LaunchedOut:
    return LaunchedOut(execution_id=xid, url=f"{API}/executions/{xid}")


def launch_platform() -> str:
    return os.environ.get("PLAIT_PLATFORM") or "local"


@router.post("/projects/{project}/domains/{domain}/executions", status_code=201)
def launch(request: Request, access: Launcher, domain: str, body: LaunchIn) -> LaunchedOut:
    """Queue an execution of a registered launch plan or workflow; the server's engine workers
    (or ``plait engine`` processes) run it."""
    if body.inputs and body.text_inputs:
        raise HTTPException(400, "give a launch's inputs either as JSON values (inputs) or as text (text_inputs), "
                                 "not both")
    xid = launch_registered(_store(request), request.app.state.blobs, access.project, domain,
                            launch_plan=body.launch_plan, workflow=body.workflow, version=body.version,
                            inputs=body.inputs, launched_by=access.user.name, tags=body.tags, platform=launch_platform(),
                            text_inputs=body.text_inputs)
    return _launched(xid)


@router.post("/executions/{execution_id}/abort")
def abort(request: Request, user: CurrentUser, row: LaunchedExecution) -> AbortOut:
    """Abort an execution: at once if it is still queued, else by the engine running it at its
    next lease renewal (its running attempts are stopped and cleaned up)."""
    outcome = ExecutionQueue(_store(request)).request_abort(row["id"], user.name)
    return AbortOut(execution_id=row["id"], outcome=outcome, url=f"{API}/executions/{row['id']}")


@router.post("/executions/{execution_id}/relaunch", status_code=201)
def relaunch_execution(request: Request, user: CurrentUser, row: LaunchedExecution,
                       body: RelaunchIn | None = None) -> LaunchedOut:
    """A new execution of the same registered version with the same inputs (``inputs`` changes some)."""
    body = body or RelaunchIn()
    return _launched(relaunch(_store(request), row["id"], launched_by=user.name, inputs=body.inputs, tags=body.tags))


@router.post("/executions/{execution_id}/recover", status_code=201)
def recover_execution(request: Request, user: CurrentUser, row: LaunchedExecution) -> LaunchedOut:
    """A new execution of a failed (or aborted) one that reuses every node that succeeded
    there and runs only the rest."""
    return _launched(recover(_store(request), row["id"], launched_by=user.name))
