"""Who is calling, and may they: FastAPI dependencies every route but /health goes through.

A request carries ``Authorization: Bearer plait_<id>_<secret>``, or the console's session cookie
(a short-lived key made at sign-in, so revoking it or its user ends the session); a missing or
unusable key is 401. A request authenticated by the cookie that changes something must also
carry the session's CSRF token (the ``X-CSRF-Token`` header, or a form's ``csrf_token`` field,
which the console checks): a page of another site can make the browser send the cookie, but
cannot read the token. Inside a project, a user with no role there gets 404 for everything in it, exactly as if
the project did not exist, so project names do not leak; a role too low for the route is 403.
"""

from __future__ import annotations

import hashlib
import hmac
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


SESSION_COOKIE = "plait_session"
"""The console's session: an API key the server made at sign-in (HttpOnly, SameSite=Strict)."""

CSRF_HEADER = "X-CSRF-Token"

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(session: str) -> str:
    """The CSRF token of a session: derived from the cookie, which only the server and the
    browser holding it know (scripts cannot read an HttpOnly cookie)."""
    return hmac.new(session.encode(), b"plait-csrf", hashlib.sha256).hexdigest()


def csrf_ok(session: str, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(csrf_token(session), sent)


def current_user(request: Request,
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> User:
    """The authenticated caller; 401 without a usable key (or session), 403 for a session's
    change without its CSRF token."""
    session = request.cookies.get(SESSION_COOKIE) if credentials is None else None
    if session is not None and request.method not in SAFE_METHODS \
            and not csrf_ok(session, request.headers.get(CSRF_HEADER)):
        raise HTTPException(403, f"a change made with the console's session needs its {CSRF_HEADER} header")
    if request.app.state.config.auth == "none":
        return LOCAL_ADMIN
    token = credentials.credentials if credentials else session
    user = access_store(request).authenticate(token) if token else None
    if user is None and not token:
        raise HTTPException(401, "a valid API key is needed: send `Authorization: Bearer plait_...` "
                                 "(set PLAIT_API_KEY for the command line)",
                            headers={"WWW-Authenticate": "Bearer"})
    if user is None:
        raise HTTPException(401, "this API key is not valid: it is mistyped, expired or revoked, or its user is "
                                 "disabled; `plait keys create` makes a new one (on the server's machine: "
                                 "`plait server create-key USER`)",
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
