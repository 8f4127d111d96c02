"""Who is calling, and may they: FastAPI dependencies every route but /health goes through.

A request carries ``Authorization: Bearer plait_<id>_<secret>``; a missing or unusable key is
401. Inside a project, a user with no role there gets 404 for everything in it, exactly as if
the project did not exist, so project names do not leak; a role too low for the route is 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from plait.storage.access import AccessStore, User, role_at_least

bearer = HTTPBearer(auto_error=False, description="An API key: plait_<id>_<secret>")

LOCAL_ADMIN = User("admin", admin=True, disabled=False, created=0.0)
"""Who every request is with ``PLAIT_SERVER_AUTH=none`` (loopback only)."""


def access_store(request: Request) -> AccessStore:
    store: AccessStore = request.app.state.access
    return store


def current_user(request: Request,
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> User:
    """The authenticated caller; 401 without a usable key."""
    if request.app.state.config.auth == "none":
        return LOCAL_ADMIN
    user = access_store(request).authenticate(credentials.credentials) if credentials else None
    if user is None:
        raise HTTPException(401, "a valid API key is needed: send `Authorization: Bearer plait_...` "
                                 "(set PLAIT_API_KEY for the command line)",
                            headers={"WWW-Authenticate": "Bearer"})
    return user


CurrentUser = Annotated[User, Depends(current_user)]


ROLE_MARK = "plait_role"
"""The attribute naming the role a dependency requires; the app puts it in the OpenAPI
description of every route as ``x-plait-role`` (and a test checks each route enforces it)."""


def require_admin(user: CurrentUser) -> User:
    """A server admin (who creates projects and users); 403 for anyone else."""
    if not user.admin:
        raise HTTPException(403, f"user {user.name!r} is not a server admin")
    return user


setattr(require_admin, ROLE_MARK, "server-admin")
ServerAdmin = Annotated[User, Depends(require_admin)]


@dataclass(frozen=True)
class ProjectAccess:
    """A caller allowed into a project, and its role there."""

    user: User
    project: str
    role: str


def authorize(request: Request, user: User, project: str, needed: str, domain: str | None = None) -> ProjectAccess:
    """``user``'s access to ``project`` (and ``domain``) if its role allows ``needed``.

    404 when it has no role there (whether or not the project exists) or the domain is not the
    project's; 403 when its role is below ``needed``.
    """
    store = access_store(request)
    role = store.role(user, project)
    if role is None:
        raise HTTPException(404, f"no project {project!r}")
    if domain is not None:
        found = store.project(project)
        if found is None or domain not in found.domains:
            raise HTTPException(404, f"project {project!r} has no domain {domain!r}")
    if not role_at_least(role, needed):
        raise HTTPException(403, f"user {user.name!r} is {role} in project {project!r}; this needs {needed} or above")
    return ProjectAccess(user, project, role)


def project_role(needed: str):  # type: ignore[no-untyped-def]
    """A dependency for routes under ``/projects/{project}``: the caller's access, needing ``needed``."""

    def dependency(request: Request, user: CurrentUser,
                   project: Annotated[str, Path(description="The project's name")]) -> ProjectAccess:
        return authorize(request, user, project, needed, request.path_params.get("domain"))

    setattr(dependency, ROLE_MARK, needed)
    return Depends(dependency)


Viewer = Annotated[ProjectAccess, project_role("viewer")]
Launcher = Annotated[ProjectAccess, project_role("launcher")]
Editor = Annotated[ProjectAccess, project_role("editor")]
ProjectAdmin = Annotated[ProjectAccess, project_role("admin")]
