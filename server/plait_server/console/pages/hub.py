"""The hub's pages: the bundles published in this server's hub, one bundle's README and typed
interface, and "Import and run".

A README is Markdown written by whoever published the bundle: it is rendered with raw HTML
off (markdown-it escapes it, and refuses ``javascript:`` links), so a bundle cannot put script
or markup on the page. Importing registers the bundle exactly as ``plait hub import`` does
(:func:`~plait.service.hub.import_bundle`: every digest checked, a no-op when it is there, other
content under its version refused) into a project and domain where the user may register, then
opens the launch form of the bundle's launch plan. It needs the editor role, as ``plait hub
import`` and every registration do: an import puts code that someone else published into the
project, to run with its secrets, so the project's editors decide it, not whoever may launch.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request
from markdown_it import MarkdownIt
from markupsafe import Markup
from plait.model.errors import EntityNotFoundError, PlaitError
from plait.service.hub import Bundle, import_bundle, read_bundle, search
from plait.storage.access import role_at_least
from plait.storage.entities import EntityStore
from starlette.responses import RedirectResponse, Response

from plait_server.auth import access_store
from plait_server.console import ConsoleUser, CsrfChecked, allowed, render
from plait_server.routes.hub import server_hub

router = APIRouter(include_in_schema=False)

_markdown = MarkdownIt("commonmark", {"html": False})


def readme_html(text: str) -> Markup:
    """A bundle's README as HTML with every tag of its own escaped."""
    return Markup(_markdown.render(text))  # noqa: S704  (html is off: markdown-it escaped the text)


def _targets(request: Request, user: Any) -> list[str]:
    """``project/domain`` for every domain of every project where ``user`` may register."""
    store = access_store(request)
    return [f"{p.name}/{d}" for p in store.projects(user) if role_at_least(store.role(user, p.name), "editor")
            for d in p.domains]


@router.get("/hub")
def hub_list(request: Request, user: ConsoleUser, q: str | None = None) -> Response:
    bundles = search(server_hub(request).manifests(), q)
    return render(request, "hub.html", user=user, nav="hub", bundles=bundles, q=q or "")


def _bundle_page(request: Request, user: Any, bundle: Bundle, error: str | None = None,
                 status_code: int = 200, chosen: str | None = None) -> Response:
    versions = [m.version for m in search(server_hub(request).manifests()) if m.name == bundle.manifest.name]
    return render(request, "hub_bundle.html", status_code=status_code, user=user, nav="hub", bundle=bundle.manifest,
                  readme=readme_html(bundle.readme()), versions=versions, targets=_targets(request, user),
                  chosen=chosen, error=error)


def _read(request: Request, name: str, version: str) -> Bundle:
    try:
        return read_bundle(server_hub(request), name, version)
    except EntityNotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except PlaitError as exc:
        raise HTTPException(400, str(exc)) from None


@router.get("/hub/{name}/{version}")
def hub_bundle(request: Request, user: ConsoleUser, name: str, version: str) -> Response:
    return _bundle_page(request, user, _read(request, name, version))


@router.post("/hub/{name}/{version}/import")
def hub_import(request: Request, user: CsrfChecked, name: str, version: str,
               target: Annotated[str, Form(description="project/domain to import into")]) -> Response:
    project, _, domain = target.partition("/")
    access = allowed(request, user, project, "editor", domain)
    bundle = _read(request, name, version)
    try:
        import_bundle(EntityStore(request.app.state.store), request.app.state.blobs, bundle, access.project, domain)
    except PlaitError as exc:
        return _bundle_page(request, user, bundle, error=str(exc), status_code=409, chosen=target)
    manifest = bundle.manifest
    return RedirectResponse(
        f"/projects/{quote(project)}/domains/{quote(domain)}/workflows/{quote(manifest.workflow)}/launch"
        f"?launch_plan={quote(manifest.name)}&version={quote(manifest.version)}", status_code=303)
