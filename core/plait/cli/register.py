"""``plait register PATH``: register a module's or a package's workflows, tasks and launch plans
under a version, on the server ``PLAIT_SERVER`` names or in the local store."""

from __future__ import annotations

from typing import Any

import click

from plait.client import Client, server_or_local
from plait.model.api.entities import CodeUploaded, EntityIn, RegistrationIn, RegistrationOut


@click.command()
@click.argument("path", type=click.Path())
@click.option("--project", default="default", show_default=True, help="The project to register into.")
@click.option("--domain", default="development", show_default=True, help="The project's domain.")
@click.option("--version", "version", required=True,
              help="The version every entity is registered under (a release, a commit hash).")
@click.option("--activate", is_flag=True, help="Make the registered launch plans the active versions.")
@click.option("--server", default=None, help="The server's URL (default: PLAIT_SERVER; none: the local store).")
def register(path: str, project: str, domain: str, version: str, activate: bool, server: str | None) -> None:
    """Register every workflow, task and launch plan PATH (a module file or a package folder)
    defines, under VERSION. Registering the same content again changes nothing; other content
    under a registered version is refused with a diff, and nothing of the set is registered."""
    url = server_or_local(server)
    if url:
        rows, activated = _register_remote(url, path, project, domain, version, activate)
    else:
        rows, activated = _register_here(path, project, domain, version, activate)
    width = max((len(kind) for _, kind, _ in rows), default=0)
    for status, kind, name in rows:
        click.echo(f"{status:<9}  {kind:<{width}}  {name}@{version}")
    for name in activated:
        click.echo(f"activated  launch_plan {name}@{version}")
    created = sum(status == "created" for status, _, _ in rows)
    click.echo(f"{created} created, {len(rows) - created} unchanged in {project}/{domain}")


Rows = list[tuple[str, str, str]]
"""(created|unchanged, kind, name) per entity."""


def _register_remote(url: str, path: str, project: str, domain: str, version: str,
                     activate: bool) -> tuple[Rows, list[str]]:
    from plait.service.register import build_registration, collect

    found = collect(path)
    where = f"/projects/{project}/domains/{domain}"
    with Client.from_env(url) as client:

        def upload(packed: Any) -> str:
            answer = client.request("PUT", f"{where}/code/{packed.digest}", content=packed.data,
                                    headers={"Content-Type": "application/octet-stream"})
            return CodeUploaded.model_validate(answer).uri

        registration = build_registration(found, version, ship=upload)
        body = RegistrationIn(version=version, activate=activate, entities=[
            EntityIn(kind=e.kind, name=e.name, body=e.body) for e in registration.entities])  # type: ignore[arg-type]
        out: RegistrationOut = client.post(f"{where}/registrations", body, RegistrationOut)
    return [(e.status, e.kind, e.name) for e in out.entities], out.activated


def _register_here(path: str, project: str, domain: str, version: str, activate: bool) -> tuple[Rows, list[str]]:
    from plait.model.settings import Settings
    from plait.service.register import register_local
    from plait.storage.blobs import BlobStore
    from plait.storage.entities import EntityStore
    from plait.storage.events import EventStore

    settings = Settings.from_env()
    store = EventStore(settings.db_url)
    try:
        results, activated = register_local(EntityStore(store), BlobStore(settings.blob_url), path, project, domain,
                                            version, activate)
    finally:
        store.close()
    return [("created" if r.created else "unchanged", r.entity.kind, r.entity.name) for r in results], activated
