"""The console: web pages served by ``plait server`` at ``/``, over the same store and roles as
the API.

Pages are rendered on the server (Jinja2, autoescaped) and made live with htmx and a small
script per rich widget (the graph); the browser libraries come from the npm registry through
``package-lock.json`` beside this file (``make`` runs ``npm ci``), never from the repository.
Each page module under :mod:`plait_server.console.pages` has a ``router``; a page takes the
signed-in user from :data:`ConsoleUser` (signed out: a redirect to the sign-in page), checks
the project role it needs with :func:`allowed` (no role: the same 404 the API answers), and
every form that changes something is checked by :data:`CsrfChecked`.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Form, HTTPException, Request
from fastapi.templating import Jinja2Templates
from plait.storage.access import User
from starlette.responses import Response

from plait_server.auth import (
    LOCAL_ADMIN,
    SESSION_COOKIE,
    ProjectAccess,
    access_store,
    authorize,
    csrf_ok,
    csrf_token,
)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


class SignInNeeded(Exception):
    """Raised by :data:`ConsoleUser` for a request without a usable session."""


def console_user(request: Request) -> User:
    """The signed-in user of a console page (with ``--auth none``, the local admin once the
    browser holds a session cookie for its CSRF token)."""
    session = request.cookies.get(SESSION_COOKIE)
    if session is None:
        raise SignInNeeded
    if request.app.state.config.auth == "none":
        return LOCAL_ADMIN
    user = access_store(request).authenticate(session)
    if user is None:
        raise SignInNeeded
    return user


ConsoleUser = Annotated[User, Depends(console_user)]


def check_csrf(request: Request, user: ConsoleUser,
               csrf_token: Annotated[str, Form(description="The session's CSRF token")] = "") -> User:
    """The signed-in user of a form that changes something, if it carries the session's token."""
    session = request.cookies.get(SESSION_COOKIE, "")
    if not csrf_ok(session, csrf_token or request.headers.get("X-CSRF-Token")):
        raise HTTPException(403, "this form is stale or came from another site: reload the page and try again")
    return user


CsrfChecked = Annotated[User, Depends(check_csrf)]


def allowed(request: Request, user: User, project: str, needed: str = "viewer",
            domain: str | None = None) -> ProjectAccess:
    """``user``'s access to ``project`` if its role allows ``needed``; as in the API, 404 without
    a role there (rendered as a page), 403 below ``needed``."""
    return authorize(request, user, project, needed, domain)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    """A page: ``template`` with ``context``, the user and the session's CSRF token."""
    session = request.cookies.get(SESSION_COOKIE)
    context.setdefault("user", None)
    return templates.TemplateResponse(
        request, template, {"csrf_token": csrf_token(session) if session else "", **context},
        status_code=status_code)


def sign_in_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/login?next={quote(target, safe='')}"


def page_modules() -> list[Any]:
    from plait_server.console import pages

    return [importlib.import_module(f"{pages.__name__}.{m.name}") for m in pkgutil.iter_modules(pages.__path__)]
