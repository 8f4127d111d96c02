"""``plait whoami``, ``plait projects``, ``plait users``, ``plait keys``: managing a server's
projects, members, users and API keys (they need ``PLAIT_SERVER`` and a key)."""

from __future__ import annotations

import sys
import time

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from plait.client import Client
from plait.model.api.access import KeyCreated, KeyOut, Me, Member, ProjectOut, UserOut

# Outside a terminal rich would wrap at 80 columns (as in plait.cli.main).
console = Console(width=None if sys.stdout.isatty() else 160)
SERVER = click.option("--server", default=None, help="The server's URL (default: PLAIT_SERVER).")


def _when(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def _print_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A table of plain text (a name with ``[`` is not rich markup); the first column, an id or
    a name copied into other commands, never wraps."""
    table = Table(*columns)
    table.columns[0].no_wrap = True
    for row in rows:
        table.add_row(*map(escape, row))
    console.print(table)


@click.command()
@SERVER
def whoami(server: str | None) -> None:
    """The user PLAIT_API_KEY belongs to, and its role in each project."""
    with Client.from_env(server) as client:
        me = client.get("/me", Me)
    click.echo(f"{me.user}{' (server admin)' if me.admin else ''}")
    if me.admin:
        click.echo("  admin of every project")
        return
    for project, role in sorted(me.roles.items()):
        click.echo(f"  {project}: {role}")


@click.group()
def projects() -> None:
    """A server's projects and their members."""


@projects.command("list")
@SERVER
def list_projects(server: str | None) -> None:
    """The projects you have a role in."""
    with Client.from_env(server) as client:
        found = client.get("/projects", list[ProjectOut])
    _print_table(("project", "domains", "your role", "description"),
                 [(p.name, ", ".join(p.domains), p.role or "", p.description) for p in found])


@projects.command("create")
@click.argument("name")
@click.option("--description", default="")
@click.option("--domain", "domains", multiple=True,
              help="A domain (repeat; default: development, staging, production).")
@SERVER
def create_project(name: str, description: str, domains: tuple[str, ...], server: str | None) -> None:
    """Create a project (server admins)."""
    body: dict[str, object] = {"name": name, "description": description}
    if domains:
        body["domains"] = list(domains)
    with Client.from_env(server) as client:
        made = client.post("/projects", body, ProjectOut)
    click.echo(f"project {made.name}: domains {', '.join(made.domains)}")


@projects.command("members")
@click.argument("project")
@SERVER
def list_members(project: str, server: str | None) -> None:
    """A project's members and their roles."""
    with Client.from_env(server) as client:
        found = client.get(f"/projects/{project}/members", list[Member])
    if not found:
        click.echo(f"{project} has no members (server admins are admins of every project)")
        return
    _print_table(("user", "role"), [(m.user, m.role) for m in found])


@projects.command("grant")
@click.argument("project")
@click.argument("user")
@click.argument("role", type=click.Choice(["viewer", "launcher", "editor", "admin"]))
@SERVER
def grant(project: str, user: str, role: str, server: str | None) -> None:
    """Give USER ROLE in PROJECT (project admins), replacing the role it had."""
    with Client.from_env(server) as client:
        client.put(f"/projects/{project}/members/{user}", {"role": role})
    click.echo(f"{user} is {role} in {project}")


@projects.command("remove")
@click.argument("project")
@click.argument("user")
@SERVER
def remove(project: str, user: str, server: str | None) -> None:
    """Take USER's role in PROJECT away."""
    with Client.from_env(server) as client:
        client.delete(f"/projects/{project}/members/{user}")
    click.echo(f"{user} has no role in {project} any more")


@click.group()
def users() -> None:
    """A server's users (server admins)."""


@users.command("list")
@SERVER
def list_users(server: str | None) -> None:
    """Every user of the server: whether it is a server admin, disabled, and when it was made."""
    with Client.from_env(server) as client:
        found = client.get("/users", list[UserOut])
    _print_table(("user", "server admin", "disabled", "created"),
                 [(u.name, "yes" if u.admin else "", "yes" if u.disabled else "", _when(u.created)) for u in found])


@users.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="A server admin (makes projects and users).")
@SERVER
def create_user(name: str, admin: bool, server: str | None) -> None:
    """Create a user; give it a key (`plait keys create --user NAME`) and roles (`plait projects grant`)."""
    with Client.from_env(server) as client:
        client.post("/users", {"name": name, "admin": admin}, UserOut)
    click.echo(f"user {name} created")


def _set_user(name: str, action: str, server: str | None) -> None:
    with Client.from_env(server) as client:
        client.post(f"/users/{name}/{action}")
    click.echo(f"user {name} {action}d")


@users.command("disable")
@click.argument("name")
@SERVER
def disable_user(name: str, server: str | None) -> None:
    """Disable a user: none of its keys authenticate any more."""
    _set_user(name, "disable", server)


@users.command("enable")
@click.argument("name")
@SERVER
def enable_user(name: str, server: str | None) -> None:
    """Enable a disabled user again: its keys not revoked or expired work again."""
    _set_user(name, "enable", server)


@click.group()
def keys() -> None:
    """API keys: yours, or (server admins) any user's."""


def _user(client: Client, user: str | None) -> str:
    return user or client.get("/me", Me).user


@keys.command("create")
@click.option("--user", default=None, help="Whose key (default: yours).")
@click.option("--expires-in-days", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Days until the key stops working (more than 0; default: never).")
@click.option("--description", default="")
@SERVER
def create_key(user: str | None, expires_in_days: float | None, description: str, server: str | None) -> None:
    """Make a key and print it: this is the only time it is shown."""
    with Client.from_env(server) as client:
        made = client.post(f"/users/{_user(client, user)}/keys",
                           {"expires_in_days": expires_in_days, "description": description}, KeyCreated)
    click.echo(made.key)
    click.echo(f"key {made.id} for {made.user}" + (f", expires {_when(made.expires)}" if made.expires else ""),
               err=True)


@keys.command("list")
@click.option("--user", default=None, help="Whose keys (default: yours).")
@SERVER
def list_keys(user: str | None, server: str | None) -> None:
    """A user's API keys (never their secrets): id (what `plait keys revoke` takes), description, dates."""
    with Client.from_env(server) as client:
        found = client.get(f"/users/{_user(client, user)}/keys", list[KeyOut])
    _print_table(("id", "description", "created", "expires", "last used", "revoked"),
                 [(k.id, k.description, _when(k.created), _when(k.expires), _when(k.last_used), _when(k.revoked))
                  for k in found])


@keys.command("revoke")
@click.argument("key_id")
@SERVER
def revoke_key(key_id: str, server: str | None) -> None:
    """Revoke a key by its id (the part after `plait_`): it stops working at once."""
    with Client.from_env(server) as client:
        client.delete(f"/keys/{key_id}")
    click.echo(f"key {key_id} revoked")


COMMANDS = (whoami, projects, users, keys)
