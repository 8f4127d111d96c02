"""Who am I; projects; users and their API keys; project members and roles."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from plait.model.api.access import (
    KeyCreated,
    KeyIn,
    KeyOut,
    Me,
    Member,
    ProjectIn,
    ProjectOut,
    RoleIn,
    UserIn,
    UserOut,
)
from plait.storage.access import ApiKey, Project, User

from plait_server.app import API
from plait_server.auth import CurrentUser, ProjectAdmin, ServerAdmin, Viewer, access_store

router = APIRouter(prefix=API, tags=["access"])
ORDER = 10


@router.get("/me")
def me(request: Request, user: CurrentUser) -> Me:
    store = access_store(request)
    return Me(user=user.name, admin=user.admin,
              roles={p.name: store.role(user, p.name) or "" for p in store.projects(user)})


# -- projects ----------------------------------------------------------------------------------


@router.get("/projects")
def list_projects(request: Request, user: CurrentUser) -> list[ProjectOut]:
    """The projects the caller has a role in."""
    store = access_store(request)
    return [_project(p, store.role(user, p.name)) for p in store.projects(user)]


@router.post("/projects", status_code=201)
def create_project(request: Request, body: ProjectIn, _admin: ServerAdmin) -> ProjectOut:
    """Create a project (server admins only)."""
    return _project(access_store(request).create_project(body.name, body.description, body.domains), "admin")


@router.get("/projects/{project}")
def get_project(request: Request, access: Viewer) -> ProjectOut:
    found = access_store(request).project(access.project)
    assert found is not None  # authorize() found a role in it
    return _project(found, access.role)


@router.get("/projects/{project}/members")
def list_members(request: Request, access: Viewer) -> list[Member]:
    return [Member(user=u, role=r) for u, r in access_store(request).members(access.project).items()]


@router.put("/projects/{project}/members/{user}")
def set_member(request: Request, user: str, body: RoleIn, access: ProjectAdmin) -> Member:
    """Give ``user`` a role in the project (project admins)."""
    access_store(request).set_role(access.project, user, body.role)
    return Member(user=user, role=body.role)


@router.delete("/projects/{project}/members/{user}", status_code=204)
def remove_member(request: Request, user: str, access: ProjectAdmin) -> Response:
    access_store(request).remove_member(access.project, user)
    return Response(status_code=204)


# -- users and keys ----------------------------------------------------------------------------


@router.get("/users")
def list_users(request: Request, _admin: ServerAdmin) -> list[UserOut]:
    return [_user(u) for u in access_store(request).list_users()]


@router.post("/users", status_code=201)
def create_user(request: Request, body: UserIn, _admin: ServerAdmin) -> UserOut:
    """Create a user (server admins only); it can do nothing until given a key and roles."""
    return _user(access_store(request).create_user(body.name, body.admin))


@router.post("/users/{name}/disable", status_code=204)
def disable_user(request: Request, name: str, _admin: ServerAdmin) -> Response:
    access_store(request).set_disabled(name, True)
    return Response(status_code=204)


@router.post("/users/{name}/enable", status_code=204)
def enable_user(request: Request, name: str, _admin: ServerAdmin) -> Response:
    """Let a disabled user's keys (those not revoked or expired) authenticate again."""
    access_store(request).set_disabled(name, False)
    return Response(status_code=204)


@router.get("/users/{name}/keys")
def list_keys(request: Request, name: str, user: CurrentUser) -> list[KeyOut]:
    """A user's keys (never their secrets): the user itself or a server admin."""
    _self_or_admin(user, name)
    return [_key(k) for k in access_store(request).keys(name)]


@router.post("/users/{name}/keys", status_code=201)
def create_key(request: Request, name: str, body: KeyIn, user: CurrentUser) -> KeyCreated:
    """A new key for a user: the key is in this answer only."""
    _self_or_admin(user, name)
    expires = None if body.expires_in_days is None else body.expires_in_days * 86400
    record, token = access_store(request).create_key(name, expires, body.description)
    return KeyCreated(**_key(record).model_dump(), key=token)


@router.delete("/keys/{key_id}", status_code=204)
def revoke_key(request: Request, key_id: str, user: CurrentUser) -> Response:
    """Revoke a key: its user or a server admin."""
    store = access_store(request)
    found = store.key(key_id)
    if found is None or not (user.admin or found.user == user.name):
        raise HTTPException(404, f"no API key {key_id!r}")
    store.revoke_key(key_id)
    return Response(status_code=204)


def _self_or_admin(user: User, name: str) -> None:
    if not (user.admin or user.name == name):
        raise HTTPException(403, f"user {user.name!r} may manage only its own keys")


def _project(project: Project, role: str | None) -> ProjectOut:
    return ProjectOut(name=project.name, description=project.description, domains=list(project.domains),
                      created=project.created, role=role)


def _user(user: User) -> UserOut:
    return UserOut(name=user.name, admin=user.admin, disabled=user.disabled, created=user.created)


def _key(key: ApiKey) -> KeyOut:
    return KeyOut(id=key.id, user=key.user, description=key.description, created=key.created,
                  expires=key.expires, revoked=key.revoked, last_used=key.last_used)
