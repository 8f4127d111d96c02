"""``plait hub publish|search|import``: share workflows as bundles (see :mod:`plait.service.hub`).

A hub is named by ``--hub``/``--to``, else ``PLAIT_HUB``, else the server ``PLAIT_SERVER``
names (its own hub). What is published is what was registered: on the server (with
``PLAIT_SERVER``) or in the local store, or a module file's workflow (``PATH:WORKFLOW``), packed
as registering it would. An import registers into the server (``PLAIT_SERVER``, as the holder
of ``PLAIT_API_KEY``) or the local store.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import click

from plait.client import Client, ServerError, server_or_local
from plait.model.errors import InputError, PlaitError


def _hub(address: str | None, server: str | None) -> Any:
    from plait.service.hub import open_hub

    address = address or os.environ.get("PLAIT_HUB") or server
    if not address:
        raise PlaitError("no hub given: pass --hub (a server's URL, a folder, or a Git repository: git+file:///... "
                         "or a path ending .git), or set PLAIT_HUB")
    return open_hub(address, Path(os.environ.get("PLAIT_HOME") or ".plait").resolve() / "hub")


def _local() -> tuple[Any, Any, Any]:
    from plait.model.settings import Settings
    from plait.storage.blobs import BlobStore
    from plait.storage.entities import EntityStore
    from plait.storage.events import EventStore

    settings = Settings.from_env()
    store = EventStore(settings.db_url)
    return store, EntityStore(store), BlobStore(settings.blob_url)


@click.group()
def hub() -> None:
    """Share workflows as bundles: publish one, search a hub, import one into a project."""


@hub.command("publish")
@click.argument("workflow")
@click.option("--version", "version", required=True, help="The bundle's semantic version (1.0.0).")
@click.option("--to", "to", default=None,
              help="The hub: a server's URL, a folder, a Git repository (default: PLAIT_HUB, else the server's own).")
@click.option("--project", default="default", show_default=True, help="The project the workflow is registered in.")
@click.option("--domain", default="development", show_default=True, help="The project's domain.")
@click.option("--workflow-version", default=None, help="The registered version to publish (default: the latest).")
@click.option("--launch-plan", default=None, help="The launch plan whose inputs the bundle takes (default: the "
                                                  "workflow's own).")
@click.option("--name", default=None, help="The bundle's name (default: the last part of the workflow's name).")
@click.option("--readme", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A Markdown file for the README (default: the workflow's and its module's docstrings).")
@click.option("--server", default=None, help="The server's URL (default: PLAIT_SERVER; none: the local store).")
def publish_command(workflow: str, version: str, to: str | None, project: str, domain: str,
                    workflow_version: str | None, launch_plan: str | None, name: str | None, readme: str | None,
                    server: str | None) -> None:
    """Publish WORKFLOW, as registered (on the server, or in the local store), or as a module
    file defines it (PATH:WORKFLOW), as the bundle NAME@VERSION. Publishing the same content
    again changes nothing; other content under a published version is refused."""
    from plait.model.hub import ExportOut, PublishedOut, PublishIn
    from plait.service.hub import (
        bundle_from_module,
        bundle_from_store,
        check_semver,
        publish,
        verify,
    )

    check_semver(version)
    text = Path(readme).read_text() if readme else None
    path = workflow.rpartition(":")[0]
    url = None if path else server_or_local(server)
    target = to or os.environ.get("PLAIT_HUB") or url
    if url and target and target.rstrip("/") == url.rstrip("/"):
        body = PublishIn(workflow=workflow, version=version, workflow_version=workflow_version, name=name,
                         launch_plan=launch_plan, readme=text)
        with Client.from_env(url) as client:
            out: PublishedOut = client.post(f"/projects/{project}/domains/{domain}/hub/bundles", body, PublishedOut)
        _published(f"{out.manifest.name}@{version}", out.hub, out.status == "created")
        return
    destination = _hub(to, url)
    if path:
        bundle = bundle_from_module(workflow, version, name=name, readme=text)
    elif url:
        body = PublishIn(workflow=workflow, version=version, workflow_version=workflow_version, name=name,
                         launch_plan=launch_plan, readme=text)
        with Client.from_env(url) as client:
            export: ExportOut = client.post(f"/projects/{project}/domains/{domain}/hub/export", body, ExportOut)
        bundle = verify(export.manifest, {f: base64.b64decode(data) for f, data in export.files.items()})
    else:
        store, entities, blobs = _local()
        try:
            bundle = bundle_from_store(entities, blobs, project, domain, workflow, version,
                                       workflow_version=workflow_version, name=name, launch_plan=launch_plan,
                                       readme=text)
        finally:
            store.close()
    _published(bundle.ref, destination.where, publish(destination, bundle))


def _published(ref: str, where: str, created: bool) -> None:
    if created:
        click.echo(f"published  {ref}  to {where}")
    else:
        click.echo(f"unchanged  {ref} is in {where} already, with the same content")


@hub.command("search")
@click.argument("text", required=False)
@click.option("--hub", "address", default=None,
              help="The hub: a server's URL, a folder, a Git repository (default: PLAIT_HUB, else PLAIT_SERVER's).")
def search_command(text: str | None, address: str | None) -> None:
    """List the bundles whose name, workflow or description contain TEXT (all without it):
    name, version, description and typed interface."""
    from plait.service.hub import search

    found = search(_hub(address, server_or_local()).manifests(), text)
    if not found:
        click.echo("no bundles" + (f" matching {text!r}" if text else ""))
    for manifest in found:
        click.echo(f"{manifest.name}@{manifest.version}  {manifest.description}")
        click.echo(f"    {manifest.workflow}{manifest.signature()}")


@hub.command("import")
@click.argument("reference", metavar="NAME@VERSION")
@click.option("--project", required=True, help="The project to register the bundle into.")
@click.option("--domain", default="development", show_default=True, help="The project's domain.")
@click.option("--hub", "address", default=None,
              help="The hub: a server's URL, a folder, a Git repository (default: PLAIT_HUB, else PLAIT_SERVER's).")
@click.option("--server", default=None, help="The server's URL (default: PLAIT_SERVER; none: the local store).")
def import_command(reference: str, project: str, domain: str, address: str | None, server: str | None) -> None:
    """Check every digest of the bundle NAME@VERSION, then register it into the project under
    VERSION, with its code archive, and a launch plan named NAME. Importing it again changes
    nothing; something else registered under that version is refused."""
    from plait.service.hub import import_bundle, read_bundle

    name, at, version = reference.partition("@")
    if not at or not name or not version:
        raise InputError(f"{reference!r}: give the bundle as NAME@VERSION (hunt@1.0.0); plait hub search lists them")
    url = server_or_local(server)
    bundle = read_bundle(_hub(address, url), name, version)
    if url:
        rows = _import_remote(url, bundle, project, domain)
    else:
        store, entities, blobs = _local()
        try:
            results = import_bundle(entities, blobs, bundle, project, domain)
        finally:
            store.close()
        rows = [("created" if r.created else "unchanged", r.entity.kind, r.entity.name) for r in results]
    width = max(len(kind) for _, kind, _ in rows)
    for status, kind, entity in rows:
        click.echo(f"{status:<9}  {kind:<{width}}  {entity}@{version}")
    created = sum(status == "created" for status, _, _ in rows)
    if created:
        click.echo(f"imported {reference} into {project}/{domain}: {created} created, {len(rows) - created} unchanged")
    else:
        click.echo(f"unchanged: {reference} was imported into {project}/{domain} already")
    click.echo(f"launch it: plait run --remote {name}@{version} --project {project} --domain {domain}")


def _import_remote(url: str, bundle: Any, project: str, domain: str) -> list[tuple[str, str, str]]:
    from plait.model.api.entities import CodeUploaded, EntityIn, RegistrationIn, RegistrationOut
    from plait.model.hub import CODE
    from plait.service.hub import bundle_entities, import_refused

    where = f"/projects/{project}/domains/{domain}"
    with Client.from_env(url) as client:
        uri = None
        if bundle.manifest.code is not None:
            answer = client.request("PUT", f"{where}/code/{bundle.manifest.code}", content=bundle.files[CODE],
                                    headers={"Content-Type": "application/octet-stream"})
            uri = CodeUploaded.model_validate(answer).uri
        body = RegistrationIn(version=bundle.manifest.version, entities=[
            EntityIn(kind=e.kind, name=e.name, body=e.body)  # type: ignore[arg-type]
            for e in bundle_entities(bundle, uri)])
        try:
            out: RegistrationOut = client.post(f"{where}/registrations", body, RegistrationOut)
        except ServerError as exc:
            if exc.status != 409:
                raise
            raise import_refused(bundle, project, domain, str(exc)) from None
    return [(e.status, e.kind, e.name) for e in out.entities]
