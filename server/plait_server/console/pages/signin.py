"""Signing in with an API key, and out.

Signing in trades the key for a new one that lives 12 hours (the session): the browser keeps
it in an HttpOnly, Secure, SameSite=Strict cookie, never the key typed in, so signing out
revokes exactly the session. The sign-in form is itself CSRF-checked against a cookie set
with the form, so another site cannot sign a browser in as someone else.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from plait_server.auth import SESSION_COOKIE, access_store, csrf_ok, csrf_token
from plait_server.console import CsrfChecked, render

router = APIRouter(include_in_schema=False)

SESSION_S = 12 * 3600
LOGIN_COOKIE = "plait_login"


def _cookie(response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, secure=True, samesite="strict", path="/")


def _next(target: str) -> str:
    """Where to go after signing in: a path on this server only (never another site)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    if request.app.state.config.auth == "none":  # one person's laptop: no key to ask for
        response: Response = RedirectResponse(_next(next), status_code=303)
        _cookie(response, SESSION_COOKIE, "local_" + secrets.token_urlsafe(32), SESSION_S)
        return response
    nonce = secrets.token_urlsafe(32)
    response = render(request, "login.html", next=_next(next), login_token=csrf_token(nonce), error=None)
    _cookie(response, LOGIN_COOKIE, nonce, 900)
    return response


@router.post("/login")
def login(request: Request, api_key: Annotated[str, Form()] = "", login_token: Annotated[str, Form()] = "",
          next: Annotated[str, Form()] = "/") -> Response:
    if not csrf_ok(request.cookies.get(LOGIN_COOKIE, ""), login_token):
        return render(request, "login.html", status_code=403, next=_next(next), login_token="",
                      error="The sign-in form expired or came from another site: reload this page.")
    access = access_store(request)
    user = access.authenticate(api_key.strip())
    if user is None:
        nonce = secrets.token_urlsafe(32)
        response = render(request, "login.html", status_code=401, next=_next(next), login_token=csrf_token(nonce),
                          error="That key is not valid: it may be mistyped, expired or revoked. "
                                "`plait server create-key USER` makes a new one.")
        _cookie(response, LOGIN_COOKIE, nonce, 900)
        return response
    _record, session = access.create_key(user.name, expires_in_s=SESSION_S, description="console session")
    response = RedirectResponse(_next(next), status_code=303)
    _cookie(response, SESSION_COOKIE, session, SESSION_S)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(request: Request, _user: CsrfChecked) -> Response:
    session = request.cookies.get(SESSION_COOKIE, "")
    if request.app.state.config.auth != "none":
        key_id = session.removeprefix("plait_").partition("_")[0]
        access_store(request).revoke_key(key_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
