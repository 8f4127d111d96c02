"""``plait run --remote NAME[@VERSION]`` and ``plait executions abort|relaunch|recover ID``.

With ``PLAIT_SERVER`` set they go through the server's API (as the holder of
``PLAIT_API_KEY``); without it, to the local store (PLAIT_DB_URL / PLAIT_HOME), where a
``plait engine`` runs what they queue.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from plait.client import Client, server_from_env
from plait.model.errors import InputError, PlaitError

_ENDED = ("succeeded", "failed", "timed_out", "aborted")


def text_inputs(args: list[str]) -> dict[str, str]:
    """``--name value`` (or ``--name=value``) pairs, by input name (dashes read as underscores)."""
    from plait.service.inputs import input_flags

    return {key.replace("-", "_"): raw for key, raw in input_flags(args)}


def _local() -> tuple[Any, Any]:
    from plait.model.settings import Settings
    from plait.storage.blobs import BlobStore
    from plait.storage.events import EventStore

    settings = Settings.from_env()
    return EventStore(settings.db_url), BlobStore(settings.blob_url)


def run_remote(name: str, project: str, domain: str, args: list[str], wait: bool, platform: str) -> None:
    """Launch the registered launch plan ``NAME[@VERSION]`` (a workflow registers a default
    launch plan of its own name); print the execution's id, and with ``wait`` its end and outputs."""
    from plait.model.api.launch import LaunchedOut, LaunchIn

    plan, _, version = name.partition("@")
    inputs = text_inputs(args)
    url = server_from_env()
    if url:
        where = f"/projects/{project}/domains/{domain}/executions"
        with Client.from_env(url) as client:
            out = client.post(where, LaunchIn(launch_plan=plan, version=version or None, text_inputs=inputs),
                              LaunchedOut)
            click.echo(out.execution_id)
            if wait:
                _show_end(_wait_remote(client, out.execution_id))
        return
    from plait.service.remote_launch import launch_registered

    store, blobs = _local()
    try:
        xid = launch_registered(store, blobs, project, domain, launch_plan=plan, version=version or None,
                                text_inputs=inputs, platform=platform)
        click.echo(xid)
        if wait:
            _show_end(_wait_local(store, xid))
    finally:
        store.close()


def _wait_remote(client: Client, xid: str) -> dict[str, Any]:
    while True:
        found: dict[str, Any] = client.get(f"/executions/{xid}")
        if found["phase"] in _ENDED:
            return found
        time.sleep(0.5)


def _wait_local(store: Any, xid: str) -> dict[str, Any]:
    from plait.storage.events import replay

    noted = False
    while True:
        row = store.execution(xid)
        if row["phase"] in _ENDED:
            state = replay(xid, store.events(xid))
            return {"phase": row["phase"], "outputs": state.outputs, "error": state.error}
        if not noted and row["phase"] == "queued":
            click.echo("queued: waiting for an engine (`plait engine` on this store) to run it", err=True)
            noted = True
        time.sleep(0.5)


def _show_end(found: dict[str, Any]) -> None:
    click.echo(found["phase"])
    if found.get("outputs") is not None:
        click.echo(json.dumps(found["outputs"]))
    if found["phase"] != "succeeded":
        raise PlaitError(found.get("error") or f"the execution ended {found['phase']}")


def _act(action: str, execution_id: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST ``/executions/ID/ACTION`` on the server, or do it in the local store."""
    url = server_from_env()
    if url:
        with Client.from_env(url) as client:
            answer: dict[str, Any] = client.post(f"/executions/{execution_id}/{action}", body or {})
            return answer
    from plait.service import remote_launch
    from plait.storage.queue import ExecutionQueue

    store, _ = _local()
    try:
        xid = store.execution(execution_id)["id"]
        if action == "abort":
            return {"execution_id": xid, "outcome": ExecutionQueue(store).request_abort(xid, _me())}
        if action == "relaunch":
            return {"execution_id": remote_launch.relaunch(store, xid, launched_by=_me(),
                                                           inputs=(body or {}).get("inputs"))}
        return {"execution_id": remote_launch.recover(store, xid, launched_by=_me())}
    finally:
        store.close()


def _me() -> str:
    import getpass

    return getpass.getuser()


_ABORTED = {"aborted": "aborted (it had not started)", "requested": "abort requested: its engine stops it shortly",
            "ended": "it had already ended; nothing to abort"}


@click.command("abort")
@click.argument("execution_id")
def abort_execution(execution_id: str) -> None:
    """Abort an execution: at once while queued, else its engine stops its running tasks."""
    out = _act("abort", execution_id)
    click.echo(f"{out['execution_id']}: {_ABORTED[out['outcome']]}")


@click.command("relaunch")
@click.argument("execution_id")
@click.option("--input", "edits", multiple=True, metavar="NAME=JSON", help="Give an input another value (JSON).")
def relaunch_execution(execution_id: str, edits: tuple[str, ...]) -> None:
    """Start a new execution of the same registered version with the same inputs; prints its id."""
    inputs: dict[str, Any] = {}
    for edit in edits:
        name, eq, raw = edit.partition("=")
        if not eq:
            raise InputError(f"--input {edit!r}: expected NAME=VALUE (the value as JSON)")
        try:
            inputs[name] = json.loads(raw)
        except json.JSONDecodeError:
            inputs[name] = raw  # plain text for a str input
    click.echo(_act("relaunch", execution_id, {"inputs": inputs})["execution_id"])


@click.command("recover")
@click.argument("execution_id")
def recover_execution(execution_id: str) -> None:
    """Start a new execution of a failed one that reuses every node that succeeded; prints its id."""
    click.echo(_act("recover", execution_id)["execution_id"])


COMMANDS = (abort_execution, relaunch_execution, recover_execution)
"""The ``plait executions`` commands this module adds."""
