"""``plait run --remote NAME[@VERSION]`` and ``plait executions abort|relaunch|recover ID``.

With ``PLAIT_SERVER`` set they go through the server's API (as the holder of
``PLAIT_API_KEY``); without it, to the local store (PLAIT_DB_URL / PLAIT_HOME), where a
``plait engine`` runs what they queue.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from plait.client import Client, server_or_local
from plait.model.api.executions import ExecutionSummary
from plait.model.errors import InputError

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


def run_remote(name: str, project: str, domain: str, args: list[str], wait: bool, platform: str,
               tags: tuple[str, ...] = (), flags: list[str] | None = None) -> None:
    """Launch the registered launch plan ``NAME[@VERSION]`` (a workflow registers a default
    launch plan of its own name); print the execution's id, and with ``wait`` its end and outputs.

    ``flags``: the ``plait run`` options given that a launch has no use for; refused, naming
    them (``--platform`` only works on the local store: the server's engines choose theirs)."""
    from plait.model.api.launch import LaunchedOut, LaunchIn

    plan, _, version = name.partition("@")
    url = server_or_local()
    unused = [flag for flag in flags or [] if url or flag != "--platform"]
    if unused:
        raise click.UsageError(f"{', '.join(unused)}: not used by `plait run --remote` (a registered launch plan "
                               "runs as it was registered, on the engines that claim it); "
                               f"leave {'it' if len(unused) == 1 else 'them'} out")
    inputs = text_inputs(args)
    if url:
        where = f"/projects/{project}/domains/{domain}/executions"
        with Client.from_env(url) as client:
            out = client.post(where, LaunchIn(launch_plan=plan, version=version or None, text_inputs=inputs,
                                              tags=list(tags)), LaunchedOut)
            click.echo(out.execution_id)
            if wait:
                _show_end(_waiting(out.execution_id, lambda: client.get(f"/executions/{out.execution_id}",
                                                                         ExecutionSummary)))
        return
    from plait.service.remote_launch import launch_registered
    from plait.service.summary import execution_summary

    store, blobs = _local()
    try:
        xid = launch_registered(store, blobs, project, domain, launch_plan=plan, version=version or None,
                                text_inputs=inputs, platform=platform, tags=tags)
        click.echo(xid)
        if wait:
            _show_end(_waiting(xid, lambda: execution_summary(store, store.execution(xid)), local=True))
    finally:
        store.close()


def _waiting(xid: str, read: Any, local: bool = False) -> ExecutionSummary:
    """Poll ``read()`` until the execution ends. Ctrl-C stops waiting, not the execution."""
    noted = False
    try:
        while True:
            found: ExecutionSummary = read()
            if found.phase in _ENDED:
                return found
            if local and not noted and found.phase == "queued":
                click.echo("queued: waiting for an engine (`plait engine` on this store) to run it", err=True)
                noted = True
            time.sleep(0.5)
    except KeyboardInterrupt:
        click.echo(f"\nstopped waiting; {xid} is still running (plait executions abort {xid})", err=True)
        sys.exit(130)


def _show_end(found: ExecutionSummary) -> None:
    """Print how the execution ended; on a failure, as a local `plait run` does (exit status 1)."""
    xid = found.execution.id
    click.echo(found.phase)
    if found.phase == "succeeded":
        if found.outputs is not None:
            click.echo(json.dumps(found.outputs))
        return
    at = f" at node {found.failed_node}" if found.failed_node else ""
    click.echo(f"execution {xid} {found.phase}{at}:\n{found.error or 'no error was recorded'}", err=True)
    click.echo(f"details: plait executions show {xid}", err=True)
    sys.exit(1)


def _act(action: str, execution_id: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST ``/executions/ID/ACTION`` on the server, or do it in the local store."""
    url = server_or_local()
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
