"""The FastAPI application: the store it serves, error mapping, and every router.

Routes live in :mod:`plait_server.routes`, one module per part of the API, each with a
``router``; every module there is included (a new part of the API is a new module), and a
module's ``install(app)``, where it has one, adds what a router cannot (static files,
handlers). Errors plait raises become HTTP answers with the message as ``detail``: bad input
400, a conflict 409, something missing 404.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from plait.model.errors import (
    EntityConflictError,
    EntityNotFoundError,
    ExecutionNotFoundError,
    InputError,
    PlaitError,
)
from plait.storage.access import AccessError, AccessStore
from plait.storage.blobs import BlobStore
from plait.storage.events import EventStore

from plait_server import routes
from plait_server.auth import ROLE_MARK, current_user
from plait_server.config import ServerConfig

API = "/api/v1"

_STATUS: list[tuple[type[Exception], int]] = [
    (InputError, 400), (EntityConflictError, 409), (EntityNotFoundError, 404), (ExecutionNotFoundError, 404),
    (AccessError, 400), (PlaitError, 400),
]

Service = Callable[[FastAPI], Callable[[], None]]
"""A background service of the server (engine workers, the scheduler): started with the app,
it returns the function that stops it."""

services: list[Service] = []
"""What runs beside the API in the server process; modules append theirs on import."""


def create_app(config: ServerConfig, *, background: bool = True) -> FastAPI:
    """The server's application over ``config``'s store (migrated on open); ``background``
    starts the engine workers and the scheduler with it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stops = [start(app) for start in services] if background else []
        try:
            yield
        finally:
            for stop in reversed(stops):
                stop()
            app.state.store.close()

    app = FastAPI(title="plait", version="1", lifespan=lifespan,
                  description="plait's control plane: projects, registered workflows, launch plans, executions.")
    app.state.config = config
    app.state.store = EventStore(config.db_url)
    app.state.access = AccessStore(app.state.store)
    app.state.blobs = BlobStore(config.blob_url)
    if config.auth == "none" and app.state.access.project("default") is None:
        try:  # one person's laptop: the project the command line uses by default is there
            app.state.access.create_project("default", "The project of a server without keys.")
        except AccessError:
            pass  # another server on this store made it at the same moment
    for exc_type, status in _STATUS:
        app.add_exception_handler(exc_type, _answer(status))
    for module in _route_modules():
        for route in module.router.routes:
            if isinstance(route, APIRoute):
                route.openapi_extra = {**(route.openapi_extra or {}), "x-plait-role": _role_of(route.dependant)}
        app.include_router(module.router)
        if hasattr(module, "install"):
            module.install(app)
    return app


def _role_of(dependant: Any) -> str:
    """The role a route needs, from the dependency that checks it: a project role, ``server-admin``,
    ``user`` (any authenticated caller) or ``public`` (no key: only /health)."""
    for sub in dependant.dependencies:
        role = getattr(sub.call, ROLE_MARK, None) or _role_of(sub)
        if role not in ("public", "user"):
            return str(role)
    if any(sub.call is current_user or _role_of(sub) == "user" for sub in dependant.dependencies):
        return "user"
    return "public"


def _answer(status: int) -> Callable[[Request, Exception], Any]:
    async def handler(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status)

    return handler


def _route_modules() -> list[Any]:
    found = [importlib.import_module(f"{routes.__name__}.{m.name}") for m in pkgutil.iter_modules(routes.__path__)]
    return sorted(found, key=lambda m: getattr(m, "ORDER", 50))
