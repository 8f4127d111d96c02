"""A tenant's executions: filters as a GET form, keyset pages (the store's cursors), and phases
kept live by htmx polling the list's body (one request every few seconds for the whole page)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from plait.model.errors import PlaitError
from plait.model.status import Phase
from plait.service.query import ExecutionFilter, list_executions
from starlette.responses import Response

from plait_server.console import ConsoleUser, allowed, render
from plait_server.console.execution_data import event_store

router = APIRouter(include_in_schema=False)

PAGE = 25
POLL_S = 3
PHASES = [p.value for p in Phase]
FIELDS = ("phase", "workflow", "launch_plan", "launched_by", "tags", "after", "before")


def when(ts: float) -> str:
    """A time as the console shows it: UTC, to the second."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _epoch(text: str, name: str) -> float | None:
    """A datetime-local field (read as UTC) in seconds since the epoch."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise PlaitError(f"{name} {text!r} is not a date and time (YYYY-MM-DDTHH:MM)") from None


def _listing(request: Request, project: str, domain: str) -> dict[str, Any]:
    """The filters asked for, the page they select, and where the next page is; an error
    message instead of rows when a filter cannot match."""
    q = request.query_params
    asked = {f: q.get(f, "").strip() for f in FIELDS}
    cursor = q.get("cursor") or None
    limit = int(q["limit"]) if q.get("limit", "").isdigit() else PAGE
    context: dict[str, Any] = {"asked": asked, "rows": [], "next_url": None, "error": None,
                               "first_page": cursor is None}
    try:
        where = ExecutionFilter(
            project=project, domain=domain, phase=asked["phase"] or None, workflow=asked["workflow"] or None,
            launch_plan=asked["launch_plan"] or None, launched_by=asked["launched_by"] or None,
            tags=tuple(t for t in asked["tags"].replace(",", " ").split() if t),
            created_after=_epoch(asked["after"], "after"), created_before=_epoch(asked["before"], "before"))
        page = list_executions(event_store(request), limit=limit, cursor=cursor, where=where)
    except PlaitError as exc:
        context["error"] = str(exc)
        return context
    filters = {k: v for k, v in asked.items() if v} | ({"limit": str(limit)} if limit != PAGE else {})
    context["rows"] = [{**r, "created_text": when(r["created"])} for r in page.items]
    context["query"] = urlencode({**filters, **({"cursor": cursor} if cursor else {})})
    if page.next_cursor:
        context["next_url"] = "?" + urlencode({**filters, "cursor": page.next_cursor})
    context["first_url"] = "?" + urlencode(filters)
    return context


@router.get("/projects/{project}/domains/{domain}/executions")
def executions(request: Request, user: ConsoleUser, project: str, domain: str) -> Response:
    allowed(request, user, project, "viewer", domain)
    context = _listing(request, project, domain)
    return render(request, "executions.html", status_code=400 if context["error"] else 200, user=user,
                  project=project, domain=domain, nav="executions", phases=PHASES, poll_s=POLL_S, **context)


@router.get("/projects/{project}/domains/{domain}/executions/rows")
def execution_rows(request: Request, user: ConsoleUser, project: str, domain: str) -> Response:
    """The list's body alone: what the page polls to keep its phases live."""
    allowed(request, user, project, "viewer", domain)
    return render(request, "executions_rows.html", project=project, domain=domain, poll_s=POLL_S,
                  **_listing(request, project, domain))
