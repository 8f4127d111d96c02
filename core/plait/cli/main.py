"""The ``plait`` command line."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from plait.model.errors import InputError, PlaitError

# Outside a terminal (CI logs, pipes) rich would wrap at 80 columns; ids must stay whole.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def main() -> None:
    """Entry point: run the CLI, printing plait errors without a traceback."""
    try:
        cli(standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except PlaitError as exc:
        if os.environ.get("PLAIT_DEBUG") == "1":
            raise
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False)
        sys.exit(2)
    except Exception as exc:
        store_error = _store_error(exc)
        if store_error is None or os.environ.get("PLAIT_DEBUG") == "1":
            raise
        err_console.print(f"[bold red]error:[/] {escape(store_error)}", markup=True, highlight=False,
                          soft_wrap=True)
        sys.exit(2)
    finally:
        # The work is over; a late Ctrl-C must not interrupt stopping the worker processes.
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _store_error(exc: Exception) -> str | None:
    """One line for a store that cannot be opened or used (a bad or unreachable PLAIT_DB_URL),
    naming it with its password hidden; None for any other error."""
    try:
        from sqlalchemy.exc import SQLAlchemyError
    except ImportError:  # pragma: no cover (a dependency of plait)
        return None
    if not isinstance(exc, SQLAlchemyError):
        return None
    from plait.model.settings import Settings, hide_password

    given = os.environ.get("PLAIT_DB_URL")
    url = given or Settings.from_env().db_url
    shown = hide_password(url)
    cause = getattr(exc, "orig", None) or exc
    reason = re.sub(r"\s*\(Background on this error at: [^)]*\)", "", " ".join(str(cause).split()))
    reason = reason or type(cause).__name__
    where = f"PLAIT_DB_URL={shown}" if given else f"{shown} (under PLAIT_HOME; PLAIT_DB_URL is unset)"
    return f"cannot use the store {where}: {reason[:300]}"


COMMANDS_GROUP = "plait.commands"
"""Entry points adding commands to ``plait``: ``plait server`` comes from plait-server this way."""


class _Commands(click.Group):
    """plait's own commands, and those installed distributions add (loaded only when used)."""

    def _installed(self) -> dict[str, Any]:
        from importlib.metadata import entry_points

        return {ep.name: ep for ep in entry_points(group=COMMANDS_GROUP) if ep.name not in self.commands}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self._installed()])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        found = super().get_command(ctx, name)
        if found is not None:
            return found
        ep = self._installed().get(name)
        if ep is None:
            return None
        command = ep.load()
        if not isinstance(command, click.Command):
            raise PlaitError(f"entry point {ep.name} = {ep.value} in group {COMMANDS_GROUP} is not a click command")
        return command

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        if args and args[0] == "server" and super().get_command(ctx, "server") is None and "server" not in self._installed():
            raise PlaitError("`plait server` comes with the plait-server distribution: pip install plait-server "
                             "(in this repository: pip install -e server)")
        return super().resolve_command(ctx, args)


@click.group(cls=_Commands)
@click.version_option(package_name="plait")
def cli() -> None:
    """plait: typed, versioned workflows of pluggable tasks."""


# ---------------------------------------------------------------------------------------
# plait run
# ---------------------------------------------------------------------------------------








def execution_options(inline_help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options of one execution that `plait run` and `plait launch` share."""
    options = [
        click.option("--inline", is_flag=True, help=inline_help),
        click.option("--keep-going", is_flag=True, help="On a failure, keep running nodes that do not depend on it."),
        click.option("--overwrite-cache", is_flag=True, help="Run cached tasks again and replace their cached results."),
        click.option("--project", default="default", show_default=True, help="Tenant project."),
        click.option("--domain", default="development", show_default=True, help="Tenant domain."),
        click.option("--priority", default=0, show_default=True,
                     help="Within the tenant, higher gets pool tokens first."),
        click.option("--platform", default=lambda: os.environ.get("PLAIT_PLATFORM") or "local", show_default="local",
                     help="Where compute tasks run (`plait plugins` lists the platforms); or PLAIT_PLATFORM."),
    ]

    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("target", required=False)
@execution_options("Run Python tasks in this process (for debugging).")
@click.option("--workers", type=int, help="Worker processes for Python tasks (default: one per core).")
@click.option("--lease-seconds", default=30.0, show_default=True,
              help="This run's claim on its execution; if the process dies, a `plait engine` resumes it after this.")
@click.option("--json", "as_json", is_flag=True, help="Print the outputs as JSON literals.")
@click.option("--remote", default=None, metavar="NAME[@VERSION]",
              help="Launch a registered launch plan instead (on PLAIT_SERVER, or the local store); prints its id.")
@click.option("--wait", is_flag=True, help="With --remote: wait for the execution to end; print its outputs.")
@click.pass_context
def run(ctx: click.Context, target: str | None, inline: bool, keep_going: bool, overwrite_cache: bool,
        workers: int | None, project: str, domain: str, priority: int, platform: str, lease_seconds: float,
        as_json: bool, remote: str | None, wait: bool) -> None:
    """Run a workflow: plait run FILE.py:WORKFLOW --input value ...

    Inputs are the workflow's parameters, as --name value (JSON for lists, dicts and structs).
    `plait run --remote NAME[@VERSION] [--tag TAG ...] --input value ...` launches a registered
    launch plan (with --remote, --tag tags the execution; without, it is a workflow input).
    """
    if remote is not None:
        from plait.cli.remote import run_remote

        rest, tags = _take_tags([*([target] if target else []), *ctx.args])
        return run_remote(remote, project, domain, rest, wait, platform, tuple(tags), _given(ctx, REMOTE_IGNORES))
    if wait:
        raise click.UsageError("--wait goes with --remote NAME (a registered launch plan); a local `plait run` "
                               "waits anyway")
    if target is None:
        raise click.UsageError("plait run needs FILE.py:WORKFLOW (or --remote NAME to launch a registered one)")
    if workers:
        os.environ["PLAIT_WORKERS"] = str(workers)
    if not inline:  # the worker processes start while the engine is imported and the workflow compiles
        from plait.plugins.registry import warm_up

        warm_up(platform)
    from plait.engine import build_engine
    from plait.engine.execution import RunOptions
    from plait.service.inputs import load_workflow, parse_inputs
    from plait.service.run import encode_inputs, run_claimed_here

    wf = load_workflow(target)
    values = parse_inputs(wf, list(ctx.args))
    spec = wf.spec
    engine = build_engine()
    engine.registry.platform(platform)  # an unknown platform is an error before anything starts
    options = RunOptions(inline=inline, fail_fast=not keep_going, overwrite_cache=overwrite_cache,
                         project=project, domain=domain, priority=priority, platform=platform)
    try:
        literals = encode_inputs(wf, values, engine)
        result = _drive(spec, lambda listener: run_claimed_here(engine, spec, literals, options, listener,
                                                                lease_s=lease_seconds))
    finally:
        engine.close()
    if result.phase.value != "succeeded":
        _report_failure(result)
    _print_outputs(wf, result.outputs or {}, engine, as_json)


REMOTE_IGNORES = {"inline": "--inline", "keep_going": "--keep-going", "overwrite_cache": "--overwrite-cache",
                  "priority": "--priority", "workers": "--workers", "lease_seconds": "--lease-seconds",
                  "as_json": "--json", "platform": "--platform"}
"""`plait run` options that a launch of a registered launch plan (``--remote``) does not take."""


def _take_tags(args: list[str]) -> tuple[list[str], list[str]]:
    """``args`` without their ``--tag TAG`` (or ``--tag=TAG``) pairs, and those tags. Only a
    remote run takes --tag: for a local one it stays a workflow input, as a workflow may name
    an input ``tag``."""
    rest: list[str] = []
    tags: list[str] = []
    it = iter(args)
    for arg in it:
        if arg == "--tag":
            value = next(it, None)
            if value is None:
                raise click.UsageError("--tag needs a value: --tag TAG")
            tags.append(value)
        elif arg.startswith("--tag="):
            tags.append(arg.removeprefix("--tag="))
        else:
            rest.append(arg)
    return rest, tags


def _given(ctx: click.Context, names: dict[str, str]) -> list[str]:
    """The flags among ``names`` (parameter: flag) given on the command line."""
    from click.core import ParameterSource

    return [flag for name, flag in names.items() if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE]


def _drive(spec: Any, start: Any) -> Any:
    """Run an execution with live progress; Ctrl-C (or SIGTERM) aborts it cleanly, once."""
    from plait.cli.progress import Progress

    progress = Progress(spec, console)

    async def main() -> Any:
        task = asyncio.create_task(start(progress.on_event))
        loop = asyncio.get_running_loop()

        def interrupt() -> None:
            # A second Ctrl-C must not cut short the abort and cleanup the first one started.
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
                loop.add_signal_handler(sig, lambda: err_console.print("still aborting…"))
            err_console.print("\ninterrupted: aborting running attempts…")
            task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, interrupt)
        with progress:
            return await task

    result = asyncio.run(main())
    progress.finish(result)
    return result


def _report_failure(result: Any) -> None:
    if result.phase.value == "aborted":
        err_console.print(f"execution {result.execution_id} aborted; every running attempt was stopped")
        sys.exit(130)
    err_console.print(f"[bold red]execution {result.execution_id} {result.phase.value}[/] at node "
                      f"[bold]{escape(str(result.failed_node))}[/]:\n{escape(str(result.error))}", highlight=False)
    err_console.print(f"details: plait executions show {result.execution_id}")
    sys.exit(1)


def _print_outputs(wf: Any, outputs: dict[str, Any], engine: Any, as_json: bool) -> None:
    from plait.authoring.decorators import _signature_types
    from plait.types.engine import ValueIO, decode_values

    if as_json:
        click.echo(json.dumps(outputs, indent=2))
        return
    _, _, types = _signature_types(wf.fn, "workflow")
    values = decode_values(outputs, types, ValueIO(engine.blobs, where=wf.name), what="output")
    for name, value in values.items():
        label = "output" if name == "o0" else name
        console.print(f"[bold]{label}[/]:")
        if hasattr(value, "to_string"):
            console.print(value)
        elif value is None or isinstance(value, (bool, int, float, str)):
            console.print(repr(value), markup=False)  # as Pretty would, without importing it
        else:
            from rich.pretty import Pretty  # 15 ms to import: only for values that need it

            console.print(Pretty(value))


# ---------------------------------------------------------------------------------------
# plait launch, plait engine: queued executions and the engine processes that claim them
# ---------------------------------------------------------------------------------------


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("target")
@execution_options("Run Python tasks in the engine's process.")
@click.pass_context
def launch(ctx: click.Context, target: str, inline: bool, keep_going: bool, overwrite_cache: bool,
           project: str, domain: str, priority: int, platform: str) -> None:
    """Queue an execution for an engine (`plait engine`) to run; prints its id.

    Inputs are given as to `plait run`: --name value (JSON for lists, dicts and structs).
    """
    from plait.model.settings import Settings
    from plait.service.inputs import load_workflow, parse_inputs
    from plait.service.launch import LaunchOptions
    from plait.service.launch import launch as launch_execution
    from plait.storage.blobs import BlobStore

    _local_only("plait launch", "with a server, register the workflow (`plait register PATH --version V`) "
                                "and launch it with `plait run --remote NAME`")
    wf = load_workflow(target)
    values = parse_inputs(wf, list(ctx.args))
    settings = Settings.from_env()
    store = _store()
    try:
        options = LaunchOptions(inline=inline, fail_fast=not keep_going, overwrite_cache=overwrite_cache,
                                priority=priority, project=project, domain=domain, platform=platform)
        xid = launch_execution(wf, values, options, store, blobs=BlobStore(settings.blob_url))
    finally:
        store.close()
    click.echo(xid)


@cli.command()
@click.option("--lease-seconds", default=30.0, show_default=True,
              help="How long a claim outlives this engine's last renewal (renewed every third of it).")
@click.option("--concurrency", default=16, show_default=True, help="Executions run at once.")
@click.option("--exit-when-idle", is_flag=True, help="Exit once nothing is left to claim and nothing runs.")
def engine(lease_seconds: float, concurrency: int, exit_when_idle: bool) -> None:
    """Claim queued executions from the store (PLAIT_DB_URL / PLAIT_HOME) and run them.

    SIGTERM or Ctrl-C stops it at once, as a crash would: nothing is aborted; once its leases
    expire, other engines claim its executions and resume them.
    """
    from plait.engine import build_engine
    from plait.engine.host import EngineHost

    built = build_engine()
    host = EngineHost(built, lease_s=lease_seconds, concurrency=concurrency)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, host.stop)
        await host.serve(stop_when_idle=exit_when_idle)

    err_console.print(f"plait engine {host.owner}: serving {built.store.shown_url}", highlight=False, markup=False)
    try:
        asyncio.run(serve())
    finally:
        built.close()


# ---------------------------------------------------------------------------------------
# plait plugins
# ---------------------------------------------------------------------------------------


@cli.command()
def plugins() -> None:
    """List installed task types and platforms, and the plugins they come from."""
    from plait.plugins.registry import load_registry

    registry = load_registry()
    table = Table("task type", "plugin", "distribution", "version")
    for name, owner in sorted(registry.task_type_owner.items()):
        table.add_row(*map(escape, (name, owner.name, owner.distribution, owner.version)))
    console.print(table)
    table = Table("platform", "plugin", "distribution", "version")
    for name, owner in sorted(registry.platform_owner.items()):
        table.add_row(*map(escape, (name, owner.name, owner.distribution, owner.version)))
    console.print(table)
    for name, error in registry.failed.items():
        err_console.print(f"[red]plugin {escape(repr(name))} failed to load:[/] {escape(str(error))}",
                          highlight=False)


@cli.command()
@click.option("--server", default=None, help="Ask this plait server (else PLAIT_SERVER; unset: the local store).")
def pools(server: str | None) -> None:
    """Each rate-limited pool: capacity, and tokens held and requests waiting per tenant."""
    from plait.cli.executions import pools as read_pools
    from plait.client import server_from_env

    _use_server(server)
    found = read_pools()
    table = Table("pool", "capacity", "rate/s", "tenant", "holding", "waiting")
    for pool in found.pools:
        tenants = sorted(set(pool.holders) | set(pool.waiters)) or [""]
        for i, tenant in enumerate(tenants):
            table.add_row(escape(pool.name) if i == 0 else "", str(pool.capacity) if i == 0 else "",
                          f"{pool.rate:g}" if pool.rate and i == 0 else "", escape(tenant),
                          str(pool.holders.get(tenant, "")), str(pool.waiters.get(tenant, "")))
    console.print(table)
    console.print(f"[dim]tokens: {escape(_token_source(found.source, server_from_env() is not None))}[/]")


def _token_source(source: str, remote: bool) -> str:
    """Where the pools were read: the server answers as for its own local store."""
    if not remote:
        return source
    if source.endswith("the local store"):
        return source.removesuffix("the local store") + "the server's store"
    from plait.model.settings import hide_password

    return f"the server's token backend ({hide_password(source)})"


def _local_only(command: str, instead: str) -> None:
    """Refuse a command that works on the local store only while a server is named."""
    from plait.client import server_from_env

    if server_from_env():
        raise InputError(f"`{command}` is a local command: it runs on this machine's store, not on the server "
                         f"PLAIT_SERVER names; {instead} (or unset PLAIT_SERVER to use the local store)")


def _use_server(server: str | None) -> None:
    """``--server URL``: the commands reading executions ask that server (as PLAIT_SERVER does)."""
    if server:
        os.environ["PLAIT_SERVER"] = server


# ---------------------------------------------------------------------------------------
# plait executions
# ---------------------------------------------------------------------------------------


@cli.group()
@click.option("--server", default=None, help="Ask this plait server (else PLAIT_SERVER; unset: the local store).")
def executions(server: str | None) -> None:
    """Inspect executions: in the local store, or on a server (PLAIT_SERVER or --server)."""
    _use_server(server)


def _store() -> Any:
    from plait.model.settings import Settings
    from plait.storage.events import EventStore

    return EventStore(Settings.from_env().db_url)


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


@executions.command("list")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500),
              help="Executions per page (1 to 500).")
@click.option("--project", default=None, help="Only this project's executions.")
@click.option("--domain", default=None, help="Only this domain's executions.")
@click.option("--phase", default=None, help="Only executions in this phase (running, succeeded, failed, ...).")
@click.option("--workflow", default=None, help="Only this workflow's executions.")
@click.option("--launch-plan", default=None, help="Only executions launched from this launch plan.")
@click.option("--launched-by", default=None, help="Only executions this user (or `schedule`) launched.")
@click.option("--prefix", default=None, help="Only executions whose id starts with this.")
@click.option("--tag", "tags", multiple=True, help="Only executions with this tag (repeat: with all of them).")
@click.option("--since", default=None, help="Created at or after: seconds since the epoch, or an ISO time.")
@click.option("--until", default=None, help="Created before: seconds since the epoch, or an ISO time.")
@click.option("--cursor", default=None, help="The page after the one that printed this cursor.")
def list_executions(limit: int, project: str | None, domain: str | None, phase: str | None,
                    workflow: str | None, launch_plan: str | None, launched_by: str | None,
                    prefix: str | None, tags: tuple[str, ...], since: str | None, until: str | None,
                    cursor: str | None) -> None:
    """The most recent executions, newest first, a page at a time."""
    from plait.cli.executions import list_page
    from plait.service.query import ExecutionFilter

    where = ExecutionFilter(project=project, domain=domain, phase=phase, workflow=workflow,
                            launch_plan=launch_plan, launched_by=launched_by, id_prefix=prefix, tags=tags,
                            created_after=_time_option("--since", since),
                            created_before=_time_option("--until", until))
    page = list_page(where, limit, cursor)
    if not page.items:
        given = {"project": project, "domain": domain, "phase": phase, "workflow": workflow,
                 "launch plan": launch_plan, "launched by": launched_by, "id prefix": prefix, "since": since,
                 "until": until, "cursor": cursor}
        filters = [f"{name} {value}" for name, value in given.items() if value is not None]
        filters += [f"tag {tag}" for tag in tags]
        console.print(f"no executions{' (' + ', '.join(filters) + ')' if filters else ''}", markup=False,
                      highlight=False, soft_wrap=True)
        return
    table = Table("id", "workflow", "phase", "started", "took", "project/domain")
    table.columns[0].no_wrap = True
    for row in page.items:
        took = f"{row.updated - row.created:.1f}s" if row.phase not in ("running", "queued") else "…"
        table.add_row(row.id, escape(row.workflow), _phase(row.phase), _when(row.created), took,
                      escape(f"{row.project}/{row.domain}"))
    console.print(table)
    if page.next_cursor:
        console.print(f"next page: --cursor {page.next_cursor}", highlight=False, soft_wrap=True)


def _time_option(name: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    from datetime import datetime

    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise InputError(f"{name} {value!r} is not a time: give seconds since the epoch or an ISO time "
                         "such as 2026-12-01T10:00") from None


def _phase(phase: str) -> str:
    color = {"succeeded": "green", "failed": "red", "timed_out": "red", "aborted": "yellow",
             "running": "cyan", "skipped": "dim"}.get(phase, "white")
    return f"[{color}]{escape(phase)}[/]"


@executions.command("show")
@click.argument("execution_id")
@click.option("--logs/--no-logs", default=True, help="Show each attempt's stdout and stderr.")
@click.option("--follow", "-f", is_flag=True, help="Print its events as they happen until it ends, then show it.")
def show_execution(execution_id: str, logs: bool, follow: bool) -> None:
    """An execution's phase, inputs, outputs, nodes, attempts and their logs."""
    from plait.cli.executions import follow as follow_events
    from plait.cli.executions import summary

    if follow:
        for event in follow_events(execution_id):
            _print_event(event, as_json=False)
    found = summary(execution_id)
    row = found.execution
    console.print(f"[bold]{escape(row.id)}[/]  {escape(row.workflow)} (version {escape(row.version)})  "
                  f"{_phase(found.phase)}  {escape(row.project)}/{escape(row.domain)}", highlight=False)
    console.print(f"inputs: {json.dumps(found.inputs)}", highlight=False, markup=False)
    if found.outputs is not None:
        console.print(f"outputs: {json.dumps(found.outputs)[:2000]}", highlight=False, markup=False)
    if found.error:
        where = f"{found.phase.replace('_', ' ')} at {found.failed_node}" if found.failed_node else found.phase
        if found.phase == "aborted" and found.error.startswith("aborted"):
            where = ""  # "aborted by alice" says it all
        console.print(f"[red]{escape(where)}:[/] {escape(found.error)}" if where else f"[red]{escape(found.error)}[/]",
                      highlight=False)
    table = Table("node", "phase", "attempts", "items", "message")
    for node in found.nodes:
        items = ""
        if node.items is not None:
            items = f"{node.items} (" + ", ".join(f"{k} {v}" for k, v in sorted(node.item_counts.items()) if v) + ")"
        last = node.attempts[-1] if node.attempts else None
        message = (node.error or (last.message if last else "") or "").splitlines()
        if last is not None and last.waiting:
            w = last.waiting
            if "pool" in w:
                message = [f"waiting for {w['pool']}: place {w['position']} of {w['tenant']}'s queue, "
                           f"{w['queued']} waiting in the pool"]
            else:  # the platform holds the attempt back (a full quota, its pods in flight)
                message = [f"waiting: {w.get('reason') or 'for resources'}"]
        extra = " (cached)" if node.cached else ""
        table.add_row(escape(node.node), _phase(node.phase) + extra, str(len(node.attempts)), escape(items),
                      escape(message[0][:100]) if message else "")
    console.print(table)
    _print_log_links(found)
    for node in found.nodes:
        for index, error in list(node.item_errors.items())[:10]:
            first = error.splitlines()[0] if error else ""
            console.print(f"[red]{escape(f'{node.node}[{index}]')} failed:[/] {escape(first)}", highlight=False)
        for attempt in node.attempts:
            if attempt.phase in ("failed", "timed_out", "aborted") and attempt.message:
                console.print(f"[bold]{escape(node.node)}[/] attempt {attempt.number} {_phase(attempt.phase)}:",
                              highlight=False)
                console.print(attempt.message, markup=False, highlight=False)
            if logs:
                _print_kept_logs(row.id, node.node, attempt)


def _print_kept_logs(execution_id: str, node: str, attempt: Any) -> None:
    """An ended attempt's kept stdout and stderr (last 4,000 characters each), if any."""
    from plait.cli.executions import attempt_logs
    from plait.service.logs import ENDED

    if attempt.phase not in ENDED or not attempt.log_links:
        return
    try:
        parts = attempt_logs(execution_id, node, attempt.number, None, None).parts
    except PlaitError:
        return  # kept files that are gone, or a map node's attempt: `plait executions logs` says why
    for part in parts:
        console.print(f"[dim]── {escape(node)} attempt {attempt.number} {escape(part.stream)} ──[/]")
        console.print(part.text[-4000:].rstrip(), markup=False, highlight=False)


def _print_log_links(found: Any) -> None:
    """Where each attempt's log is, and how to read a map item's."""
    for node in found.nodes:
        for attempt in node.attempts:
            if attempt.log_links:
                where = "  ".join(f"{stream} {link}" for stream, link in attempt.log_links.items())
                console.print(f"logs of {node.node} attempt {attempt.number}: {where}", markup=False,
                              highlight=False, soft_wrap=True)
        if node.items is not None:
            console.print(f"logs of {node.node}'s items: plait executions logs {found.execution.id} {node.node} "
                          "--item I", markup=False, highlight=False, soft_wrap=True)


@executions.command("logs")
@click.argument("execution_id")
@click.argument("node")
@click.option("--attempt", type=int, default=None, help="Which attempt (1, 2, ...); the latest by default.")
@click.option("--item", type=int, default=None, help="A map node's item, by index.")
@click.option("--follow", "-f", is_flag=True, help="Print the log as it is written, until the attempt ends.")
@click.option("--tail", type=int, default=None, help="Only the last N lines (of each stream).")
def execution_logs(execution_id: str, node: str, attempt: int | None, item: int | None, follow: bool,
                   tail: int | None) -> None:
    """An attempt's log: its stdout here and its stderr on stderr (a pod's log mixes both).

    The kept files once the attempt ended; while it runs, its pod's log on the kubernetes
    platform, or a command line's files on the local one.
    """
    from plait.service.logs import follow_logs, wait_for_attempt

    def note(text: str) -> None:
        err_console.print(f"[dim]{escape(text)}[/]", highlight=False)

    from plait.cli.executions import attempt_logs
    from plait.client import server_or_local

    if not follow:
        found = attempt_logs(execution_id, node, attempt, item, tail)
        for text in found.notes:
            note(text)
        parts: Any = found.parts
    elif server_or_local():
        raise InputError("`plait executions logs --follow` reads the local store; against a server, "
                         "run it again without --follow to see the log as it is now")
    else:
        store = _store()
        ref = wait_for_attempt(store, execution_id, node, attempt=attempt, item=item, note=note)
        parts = follow_logs(store, ref, tail, note)
    shown = None
    for part in parts:
        out = sys.stderr if part.stream.endswith("stderr") else sys.stdout
        if part.stream != shown and part.stream not in ("stdout", "stderr", "pod") and part.kind == "text":
            out.write(f"==> {part.stream} <==\n")  # a task type's own streams: every rank's, labelled
        shown = part.stream
        out.write(part.text)
        out.flush()


@executions.command("resume")
@click.argument("execution_id")
@click.option("--inline", is_flag=True, help="Run Python tasks in this process (for debugging).")
@click.option("--keep-going", is_flag=True, help="On a failure, keep running nodes that do not depend on it.")
def resume_execution(execution_id: str, inline: bool, keep_going: bool) -> None:
    """Carry on an execution that stopped: finished work is kept, running work re-attached."""
    from plait.engine import build_engine
    from plait.engine.execution import RunOptions
    from plait.service.run import resume_claimed_here

    _local_only("plait executions resume", f"with a server, start a new execution that reuses what succeeded: "
                                           f"plait executions recover {execution_id}")
    engine = build_engine()
    try:
        row = engine.store.execution(execution_id)
        if row["phase"] == "succeeded":
            raise InputError(f"execution {row['id']} already succeeded; nothing to resume")
        options = RunOptions(inline=inline, fail_fast=not keep_going)
        result = _drive(engine.store.spec(row["version"]),
                        lambda listener: resume_claimed_here(engine, row["id"], options, listener))
    finally:
        engine.close()
    if result.phase.value != "succeeded":
        _report_failure(result)
    console.print(f"outputs: {json.dumps(result.outputs)[:2000]}", markup=False, highlight=False)


@executions.command("events")
@click.argument("execution_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def execution_events(execution_id: str, as_json: bool) -> None:
    """Every event of an execution, in order."""
    from plait.cli.executions import events

    for event in events(execution_id):
        _print_event(event, as_json)


def _print_event(event: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"ts": event.ts, "kind": event.kind, "entity": event.entity,
                               "phase": event.phase, "data": event.data}))
    else:
        data = json.dumps(event.data)
        click.echo(f"{_when(event.ts)}  {event.kind:9} {event.phase:22} {event.entity}  "
                   f"{data if len(data) < 160 else data[:157] + '...'}")


from plait.cli.register import register as _register  # noqa: E402  (it needs nothing of this module)
from plait.cli.remote import COMMANDS as _REMOTE_COMMANDS  # noqa: E402  (executions abort|relaunch|recover)

for _command in _REMOTE_COMMANDS:
    executions.add_command(_command)

cli.add_command(_register)

from plait.cli.hub import hub as _hub  # noqa: E402  (plait hub publish|search|import)

cli.add_command(_hub)

from plait.cli.admin import COMMANDS as _ADMIN_COMMANDS  # noqa: E402  (whoami, projects, users, keys)

for _command in _ADMIN_COMMANDS:
    cli.add_command(_command)


if __name__ == "__main__":
    main()
