"""The server's hub: bundles published from its projects, kept under ``hub/`` in its blob store.

Reading is public (no key): a hub only holds what an editor chose to publish, and a team with
no account here imports from it. Publishing needs the editor role in the project the
workflow is registered in; the server makes the bundle itself from that registration, so what
is published is exactly what was registered.
"""

from __future__ import annotations

import base64

from fastapi import APIRouter, HTTPException, Request, Response
from plait.model.hub import (
    BUNDLE_FILES,
    MANIFEST,
    BundleOut,
    ExportOut,
    Manifest,
    PublishedOut,
    PublishIn,
)
from plait.service.hub import BlobHub, Bundle, bundle_from_store, publish, read_bundle, search
from plait.storage.entities import EntityStore

from plait_server.app import API
from plait_server.auth import Editor

router = APIRouter(prefix=API, tags=["hub"])
ORDER = 40


def server_hub(request: Request) -> BlobHub:
    """This server's hub (the console's hub page reads it too)."""
    return BlobHub(request.app.state.blobs)


@router.get("/hub/bundles")
def list_bundles(request: Request, q: str | None = None) -> list[Manifest]:
    """The bundles (newest version of a name first) whose name, workflow or description contain ``q``."""
    return search(server_hub(request).manifests(), q)


@router.get("/hub/bundles/{name}/{version}")
def get_bundle(request: Request, name: str, version: str) -> BundleOut:
    """One bundle's manifest, README and interface, its digests checked."""
    bundle = read_bundle(server_hub(request), name, version)
    return BundleOut(manifest=bundle.manifest, readme=bundle.readme(), signature=bundle.manifest.signature())


@router.get("/hub/bundles/{name}/{version}/files/{file}")
def get_bundle_file(request: Request, name: str, version: str, file: str) -> Response:
    """One file of a bundle as it was published (an importer checks it against the manifest)."""
    if file not in (MANIFEST, *BUNDLE_FILES):
        raise HTTPException(404, f"a bundle has no file {file!r}; its files are {', '.join((MANIFEST, *BUNDLE_FILES))}")
    data = server_hub(request).read_file(name, version, file)
    if data is None:
        raise HTTPException(404, f"bundle {name}@{version} has no {file} in this hub")
    media = "application/gzip" if file.endswith(".gz") else "text/markdown" if file.endswith(".md") else \
        "application/json"
    return Response(data, media_type=media)


def _bundle(request: Request, body: PublishIn, access: Editor, domain: str) -> Bundle:
    return bundle_from_store(EntityStore(request.app.state.store), request.app.state.blobs, access.project, domain,
                             body.workflow, body.version, workflow_version=body.workflow_version, name=body.name,
                             launch_plan=body.launch_plan, readme=body.readme)


@router.post("/projects/{project}/domains/{domain}/hub/bundles")
def publish_bundle(request: Request, body: PublishIn, access: Editor, domain: str) -> PublishedOut:
    """Publish a registered workflow in this server's hub; 409 when the version holds other content."""
    bundle = _bundle(request, body, access, domain)
    created = publish(server_hub(request), bundle)
    return PublishedOut(manifest=bundle.manifest, status="created" if created else "unchanged",
                        hub=f"the hub of {str(request.base_url).rstrip('/')}")


@router.post("/projects/{project}/domains/{domain}/hub/export")
def export_bundle(request: Request, body: PublishIn, access: Editor, domain: str) -> ExportOut:
    """The bundle of a registered workflow, not stored: for publishing in a folder or Git hub."""
    bundle = _bundle(request, body, access, domain)
    return ExportOut(manifest=bundle.manifest,
                     files={file: base64.b64encode(data).decode() for file, data in bundle.files.items()})
