"""The console's pages, its static files and browser libraries, and how its errors look.

Included like every routes module; :func:`install` adds what a router cannot carry: the
static folder, the HTML answers for errors on pages (the API keeps its JSON), and the headers
every page is sent with (no inline script runs, no other site may frame a page).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.staticfiles import StaticFiles
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response

from plait_server.app import API
from plait_server.console import HERE, SignInNeeded, console_user, page_modules, render, sign_in_url
from plait_server.console.assets import AssetsMissing, vendor_file

router = APIRouter(include_in_schema=False)
ORDER = 90  # after the API: a page never shadows an API route

for _module in page_modules():
    router.include_router(_module.router)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@router.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for it whatever the page links; the console's icon is an SVG."""
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.get("/static/vendor/{name}")
def vendor(name: str) -> Response:
    try:
        path = vendor_file(name)
    except AssetsMissing as exc:
        return PlainTextResponse(str(exc), status_code=503)
    if path is None:
        return PlainTextResponse(f"no browser library {name!r} is served", status_code=404)
    return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=3600"})


def install(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    async def signed_out(request: Request, _exc: Exception) -> Response:
        if request.headers.get("HX-Request"):  # htmx follows this header, not a redirect
            return Response(status_code=401, headers={"HX-Redirect": sign_in_url(request)})
        return RedirectResponse(sign_in_url(request), status_code=303)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith(API) or request.url.path.startswith("/static/"):
            return await http_exception_handler(request, exc)
        try:  # a signed-in user keeps the navigation and Sign out on an error page
            user = console_user(request)
        except SignInNeeded:
            user = None
        return render(request, "error.html", status_code=exc.status_code, status=exc.status_code,
                      detail=exc.detail, user=user)

    app.add_exception_handler(SignInNeeded, signed_out)
    app.add_exception_handler(HTTPException, http_error)

    @app.middleware("http")
    async def page_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        if not request.url.path.startswith(API):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
        return response
