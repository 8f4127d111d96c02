"""The front page: the projects the user has a role in, with their domains."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from plait_server.auth import access_store
from plait_server.console import ConsoleUser, render

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(_user: ConsoleUser) -> Response:
    return RedirectResponse("/projects", status_code=303)


@router.get("/projects")
def projects(request: Request, user: ConsoleUser) -> Response:
    store = access_store(request)
    rows = [(p, store.role(user, p.name)) for p in store.projects(user)]
    return render(request, "projects.html", user=user, projects=rows)
