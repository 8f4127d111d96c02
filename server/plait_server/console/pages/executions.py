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
from plait_server.console.execution_data import event_store, launch_records

router = APIRouter(include_in_schema=False)

PAGE = 25
POLL_S = 3
PHASES = [p.value for p in Phase]
FIELDS = ("phase", "workflow", "launch_plan", "launched_by", "created_after", "created_before")
"""The API's filter names (``tag``, repeatable, is read apart)."""


def when(ts: float) -> str:
    """A time as the console shows it: UTC, to the second."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _epoch(text: str, name: str, errors: list[str]) -> float | None:
    """A datetime-local field (read as UTC), or seconds since the epoch as the API takes them, in
    seconds since the epoch; None, and the reason in ``errors``, for text that is neither."""
    if not text:
        return None
    try:
        return float(text) if text.replace(".", "", 1).isdigit() else datetime.fromisoformat(text).replace(
            tzinfo=UTC).timestamp()
    except ValueError:
        errors.append(f"{name.replace('_', ' ')} {text!r} is not a date and time (YYYY-MM-DDTHH:MM) "
                      "or seconds since the epoch")
        return None


def _listing(request: Request, project: str, domain: str) -> dict[str, Any]:
    """The filters asked for (the API's names), the page they select, and where the next page
    is; every bad filter's message instead of rows when one cannot match."""
    q = request.query_params
    asked = {f: q.get(f, "").strip() for f in FIELDS}
    tags = [t for given in q.getlist("tag") for t in given.replace(",", " ").split()]
    cursor = q.get("cursor") or None
    limit = int(q["limit"]) if q.get("limit", "").isdigit() else PAGE
    context: dict[str, Any] = {"asked": asked, "tags": " ".join(tags), "rows": [], "next_url": None, "error": None,
                               "first_page": cursor is None}
    errors: list[str] = []
    if asked["phase"] and asked["phase"] not in PHASES:
        errors.append(f"phase {asked['phase']!r} is not a phase; use one of {', '.join(PHASES)}")
    after = _epoch(asked["created_after"], "created_after", errors)
    before = _epoch(asked["created_before"], "created_before", errors)
    try:
        if errors:
            raise PlaitError("; ".join(errors))
        where = ExecutionFilter(
            project=project, domain=domain, phase=asked["phase"] or None, workflow=asked["workflow"] or None,
            launch_plan=asked["launch_plan"] or None, launched_by=asked["launched_by"] or None,
            tags=tuple(tags), created_after=after, created_before=before)
        page = list_executions(event_store(request), limit=limit, cursor=cursor, where=where)
    except PlaitError as exc:
        context["error"] = str(exc)
        return context
    filters = [(k, v) for k, v in asked.items() if v] + [("tag", t) for t in tags]
    filters += [("limit", str(limit))] if limit != PAGE else []
    launches = launch_records(event_store(request), [r["id"] for r in page.items])
    context["rows"] = [{**r, "created_text": when(r["created"]),
                        "workflow_version": launches.get(r["id"], {}).get("workflow_version")} for r in page.items]
    context["query"] = urlencode(filters + ([("cursor", cursor)] if cursor else []))
    if page.next_cursor:
        context["next_url"] = "?" + urlencode(filters + [("cursor", page.next_cursor)])
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
