"""``plait server``: serve the API (and engine workers and the scheduler) over plait's store."""

from __future__ import annotations

import errno
import socket
import sys

import click
from plait.model.errors import PlaitError


@click.group(invoke_without_command=True)
@click.option("--host", default=None, help="Address to listen on (PLAIT_SERVER_HOST; default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (PLAIT_SERVER_PORT; default 8742).")
@click.option("--engines", type=int, default=None,
              help="Engine workers in this process (PLAIT_SERVER_ENGINES; default 1; 0: only `plait engine`).")
@click.option("--auth", type=click.Choice(["keys", "none"]), default=None,
              help="keys (default): every request carries an API key; none: loopback only, no keys.")
@click.pass_context
def server(ctx: click.Context, host: str | None, port: int | None, engines: int | None, auth: str | None) -> None:
    """Serve plait's API over the store (PLAIT_DB_URL, or PLAIT_HOME's SQLite): projects, registered
    workflows, launch plans, schedules and executions, for a team. OpenAPI at /docs."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from plait_server.app import create_app
    from plait_server.config import ServerConfig

    config = ServerConfig.from_env(host=host, port=port, engines=engines, auth=auth)
    config.check()
    _check_port(config.host, config.port)
    app = create_app(config)
    where = _url(config.host, config.port)
    if config.auth == "keys":
        _first_start(app.state.access, where)
    click.echo(f"plait server: {where} (API docs: {where}/docs), store {app.state.store.shown_url}, "
               f"{config.engines} engine worker(s)", err=True)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning")


def _url(host: str, port: int) -> str:
    """The URL a client on this machine gives as PLAIT_SERVER (an IPv6 address in brackets)."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _check_port(host: str, port: int) -> None:
    """Fail before anything starts when the port cannot be listened on (uvicorn would say so only
    after the banner, in a traceback)."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise PlaitError(f"cannot listen on {host}: {exc.strerror or exc}; give another address with --host "
                         "(or PLAIT_SERVER_HOST)") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PlaitError(f"port {port} on {host} is already in use (another plait server?): stop what "
                                 "listens there, or choose another port with --port (or PLAIT_SERVER_PORT)") from None
            raise PlaitError(f"cannot listen on {host} port {port}: {exc.strerror or exc}; choose another with "
                             "--port (or --host)") from None


def _export_hint(where: str) -> str:
    return f"  export PLAIT_SERVER={where} PLAIT_API_KEY=<that key>"


def _first_start(access: object, where: str) -> None:
    from plait.storage.access import AccessStore

    assert isinstance(access, AccessStore)
    if not sys.stderr.isatty():
        if not any(u.admin for u in access.list_users()):
            click.echo("plait server: no admin user yet: run `plait server bootstrap` against this store "
                       "to make one and print its key", err=True)
        return
    key = access.bootstrap()
    if key is not None:
        click.echo(f"plait server: first start: made user 'admin' and project 'default'.\n"
                   f"  admin's API key (shown once; keep it): {key}\n"
                   f"{_export_hint(where)}", err=True)


@server.command()
@click.option("--user", default="admin", show_default=True, help="The admin user to make.")
def bootstrap(user: str) -> None:
    """Make the first admin user (and project 'default') in the store and print its API key.

    Run it once, where the server's store is reachable; it refuses when an admin exists
    (`plait server create-key` gives an existing user another key)."""
    from plait.model.settings import Settings
    from plait.storage.access import AccessStore
    from plait.storage.events import EventStore

    from plait_server.config import ServerConfig

    store = EventStore(Settings.from_env().db_url)
    try:
        key = AccessStore(store).bootstrap(admin=user, description="made by plait server bootstrap")
    finally:
        store.close()
    if key is None:
        raise PlaitError("this store has an admin user already; `plait server create-key USER` makes another key")
    click.echo(key)
    config = ServerConfig.from_env()
    click.echo(f"plait server bootstrap: made user {user!r} (server admin) and project 'default'; the key above "
               f"is shown once.\n{_export_hint(_url(config.host, config.port))}", err=True)


@server.command("create-key")
@click.argument("user")
@click.option("--expires-in-days", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Days until the key stops working (more than 0; default: never).")
def create_key(user: str, expires_in_days: float | None) -> None:
    """Make another API key for USER directly in the store (for an operator who lost the admin's) and print it."""
    from plait.model.settings import Settings
    from plait.storage.access import AccessStore
    from plait.storage.events import EventStore

    store = EventStore(Settings.from_env().db_url)
    try:
        _, key = AccessStore(store).create_key(user, None if expires_in_days is None else expires_in_days * 86400,
                                               "made with plait server create-key")
    finally:
        store.close()
    click.echo(key)
