"""Registration: code archives, registering a set of entities, their versions, archiving, and
the active version of each launch plan. Everything is under a project's domain."""

from __future__ import annotations

import hashlib
import re
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Request
from plait.model.api.entities import (
    ActiveIn,
    CodeUploaded,
    EntityOut,
    Kind,
    Registered,
    RegistrationIn,
    RegistrationOut,
    VersionOut,
)
from plait.service.register import activate_plans, checked_entities, store_code
from plait.storage.blobs import BlobStore
from plait.storage.entities import Entity, EntityStore

from plait_server.app import API
from plait_server.auth import Editor, Viewer

router = APIRouter(prefix=API + "/projects/{project}/domains/{domain}", tags=["registration"])
ORDER = 20

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def _entities(request: Request) -> EntityStore:
    return EntityStore(request.app.state.store)


def _blobs(request: Request) -> BlobStore:
    blobs: BlobStore = request.app.state.blobs
    return blobs


@router.put("/code/{digest}")
def upload_code(request: Request, digest: str, access: Editor,
                data: Annotated[bytes, Body(media_type="application/octet-stream")]) -> CodeUploaded:
    """Store a code archive (the ``.tar.gz`` of :mod:`plait.runtime.code`) under its SHA-256;
    400 when the bytes have another digest. Uploading it again changes nothing."""
    if not _DIGEST.match(digest):
        raise HTTPException(400, f"{digest!r} is not a SHA-256 digest (64 lowercase hex digits)")
    actual = hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise HTTPException(400, f"the archive's SHA-256 is {actual}, not {digest}: it was damaged on the way, "
                                 "or sent under the wrong digest")
    uri, created = store_code(_blobs(request), data, digest)
    return CodeUploaded(digest=digest, uri=uri, created=created)


@router.post("/registrations")
def register(request: Request, body: RegistrationIn, access: Editor, domain: str) -> RegistrationOut:
    """Register a set of tasks, workflows and launch plans under one version: all of them, or
    none when any is registered already with other content (409, with a diff of each)."""
    store = _entities(request)
    items = checked_entities(store, _blobs(request), access.project, domain, body.version,
                             [(e.kind, e.name, e.body) for e in body.entities])
    results = store.register_all(access.project, domain, items)
    activated = activate_plans(store, access.project, domain, items) if body.activate else []
    return RegistrationOut(entities=[
        Registered(kind=r.entity.kind, name=r.entity.name, version=r.entity.version,  # type: ignore[arg-type]
                   digest=r.entity.digest, status="created" if r.created else "unchanged") for r in results],
        activated=activated)


@router.get("/entities/{kind}")
def list_names(request: Request, kind: Kind, access: Viewer, domain: str, archived: bool = False) -> list[str]:
    """The names ``kind`` is registered under; names with only archived versions with ``archived``."""
    return _entities(request).names(access.project, domain, kind, include_archived=archived)


@router.get("/entities/{kind}/{name}")
def list_versions(request: Request, kind: Kind, name: str, access: Viewer, domain: str,
                  archived: bool = False) -> list[VersionOut]:
    """An entity's versions, oldest first; archived ones only with ``archived``."""
    found = _entities(request).list_versions(access.project, domain, kind, name, include_archived=archived)
    return [_version(e) for e in found]


@router.get("/entities/{kind}/{name}/{version}")
def get_entity(request: Request, kind: Kind, name: str, version: str, access: Viewer, domain: str) -> EntityOut:
    """One version with its body, archived or not."""
    found = _entities(request).get(access.project, domain, kind, name, version)
    if found is None:
        raise HTTPException(404, f"no {kind} {name!r} version {version!r} in {access.project}/{domain}")
    return _entity(found)


@router.post("/entities/{kind}/{name}/{version}/archive")
def archive(request: Request, kind: Kind, name: str, version: str, access: Editor, domain: str) -> EntityOut:
    """Hide a version from the version list; it stays readable, and executions keep pointing at it."""
    store = _entities(request)
    store.archive(access.project, domain, kind, name, version)
    found = store.get(access.project, domain, kind, name, version)
    assert found is not None
    return _entity(found)


@router.get("/launch_plans/{launch_plan}/active")
def get_active(request: Request, launch_plan: str, access: Viewer, domain: str) -> EntityOut:
    """The active version of a launch plan (the one whose schedule fires); 404 when none is."""
    found = _entities(request).active(access.project, domain, launch_plan)
    if found is None:
        raise HTTPException(404, f"launch plan {launch_plan!r} has no active version in {access.project}/{domain}")
    return _entity(found)


@router.put("/launch_plans/{launch_plan}/active")
def activate(request: Request, launch_plan: str, body: ActiveIn, access: Editor, domain: str) -> EntityOut:
    """Make a version the launch plan's one active version, in place of the one that was."""
    return _entity(_entities(request).activate(access.project, domain, launch_plan, body.version))


@router.delete("/launch_plans/{launch_plan}/active")
def deactivate(request: Request, launch_plan: str, access: Editor, domain: str) -> EntityOut:
    """Leave the launch plan with no active version (its schedule stops firing); the version
    that was active, 404 when none was."""
    store = _entities(request)
    found = store.active(access.project, domain, launch_plan)
    if found is None:
        raise HTTPException(404, f"launch plan {launch_plan!r} has no active version in {access.project}/{domain}")
    store.deactivate(access.project, domain, launch_plan)
    return _entity(found)


def _version(e: Entity) -> VersionOut:
    return VersionOut(kind=e.kind, name=e.name, version=e.version, digest=e.digest,  # type: ignore[arg-type]
                      created=e.created, archived=e.archived)


def _entity(e: Entity) -> EntityOut:
    return EntityOut(**_version(e).model_dump(), body=e.body)
