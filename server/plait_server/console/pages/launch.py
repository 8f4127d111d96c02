"""The launch form, made from a registered workflow's typed interface, and relaunch with edits.

Each input becomes a field that fits its type (a checkbox for a bool, a choice for an enum, a
date picker, one value per line for a list, an upload or a URI for a file, JSON for a
structure). What is typed is read exactly as ``plait run --remote`` reads it on the server
(:func:`~plait.service.remote_launch.parse_text`, then
:func:`~plait.service.remote_launch.literal_of`), field by field so each error stands next to
its field with every value kept; the launch itself is the API's
(:func:`~plait.service.remote_launch.launch_registered`, and
:func:`~plait.service.remote_launch.relaunch`, which records the relaunch as the API's does).

An empty field means: no value (None) for an optional input, an empty list for a list, and
otherwise the default (the launch plan's, else the workflow's; for a relaunch, the earlier
execution's value). A launch plan's fixed inputs are shown, read-only, and never sent.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from plait.model.errors import InputError, PlaitError
from plait.model.registered import LaunchPlanSpec, RegisteredWorkflow
from plait.model.spec import WorkflowSpec
from plait.model.typespec import TypeSpec
from plait.service.remote_launch import (
    launch_registered,
    launched_from,
    literal_of,
    parse_text,
    relaunch,
)
from plait.storage.blobs import BlobStore
from plait.storage.entities import EntityStore
from plait.storage.events import EventStore
from starlette.datastructures import FormData, UploadFile
from starlette.responses import RedirectResponse, Response

from plait_server.console import ConsoleUser, CsrfChecked, allowed, render
from plait_server.routes.executions import visible_execution
from plait_server.routes.launch import launch_platform

router = APIRouter(include_in_schema=False)

UPLOAD = ".upload"
"""The suffix of a file input's upload field (``NAME.upload``), beside its URI field ``NAME``."""


@dataclass
class Field:
    """One input of the form: its type, the widget for it, the text shown, and its error."""

    name: str
    tp: TypeSpec
    text: str = ""
    error: str | None = None
    fixed: bool = False
    has_default: bool = False
    default: str = ""
    """The default's text, said in the hint (a relaunch's fields have none: they hold the earlier values)."""

    @property
    def optional(self) -> bool:
        return self.tp.kind == "optional"

    @property
    def inner(self) -> TypeSpec:
        return self.tp.args[0] if self.optional else self.tp

    @property
    def id(self) -> str:
        return "in-" + self.name

    @property
    def widget(self) -> str:
        """``checkbox``, ``select``, ``date``, ``lines``, ``file``, ``json`` or ``text``."""
        kind = self.inner.kind
        if kind == "bool":
            return "select" if self.optional else "checkbox"
        if kind in ("enum", "date", "file"):
            return "select" if kind == "enum" else kind
        if kind == "list":
            return "lines"
        if kind in ("int", "float", "str", "datetime", "timedelta", "directory", "bytes"):
            return "text"
        return "json"

    @property
    def choices(self) -> list[str]:
        values = ["true", "false"] if self.inner.kind == "bool" else list(self.inner.values or ())
        return ([""] if self.optional or self.text not in values else []) + values

    @property
    def inputmode(self) -> str | None:
        return {"int": "numeric", "float": "decimal", "timedelta": "decimal"}.get(self.inner.kind)

    @property
    def hint(self) -> str:
        """What to type, in words (the error check is the server's, never the browser's)."""
        kind = self.inner.kind
        how = {"datetime": "ISO 8601, for example 2026-12-01T09:30:00+00:00",
               "timedelta": "seconds", "directory": "its URI in the blob store (s3://..., file://...)",
               "bytes": "base64 text", "file": "upload one, or give its URI in the blob store"}.get(kind)
        if kind == "list":
            how = f"one {self.inner.args[0].describe()} per line; blank lines are skipped"
        elif self.widget == "json":
            how = "JSON"
        parts = [self.tp.describe()] + ([how] if how else [])
        if self.default and self.widget in ("text", "select", "date", "checkbox"):
            parts.append(f"default {self.default}")
        if self.optional:
            parts.append("optional: leave empty for none")
        elif not self.has_default and not self.fixed and kind != "list" and self.widget != "checkbox":
            parts.append("required")
        return " · ".join(parts)


def _text(literal: Any, tp: TypeSpec) -> str:
    """A literal as the text a field shows (and reads back the same)."""
    if literal is None:
        return ""
    kind = tp.args[0].kind if tp.kind == "optional" else tp.kind
    inner = tp.args[0] if tp.kind == "optional" else tp
    if kind == "list" and isinstance(literal, list):
        return "\n".join(_text(item, inner.args[0]) for item in literal)
    if kind in ("file", "directory") and isinstance(literal, dict):
        return str(literal.get("uri", ""))
    if isinstance(literal, bool):
        return "true" if literal else "false"
    if isinstance(literal, str):
        return literal
    return json.dumps(literal)


def _fields(spec: WorkflowSpec, values: dict[str, Any], fixed: dict[str, Any], defaults: bool = True) -> list[Field]:
    """The form's fields, showing ``values`` (the defaults, or the earlier execution's inputs)."""
    return [Field(name, tp, _text(fixed.get(name, values.get(name)), tp), fixed=name in fixed,
                  has_default=name in values, default=_text(values.get(name), tp) if defaults else "")
            for name, tp in spec.inputs.items()]


_MISSING = object()


def _read(field: Field, text: str) -> Any:
    """The literal for ``field`` from its text (``_MISSING``: leave it to the default), read as
    the server reads ``plait run --remote``'s text; InputError names the input."""
    where = f"input {field.name!r}"
    if not text.strip():
        if field.optional:
            return None
        if field.inner.kind == "list":
            return []
        if field.has_default:
            return _MISSING
        raise InputError(f"{field.name}: give a value ({field.tp.describe()}); this input has no default")
    if field.inner.kind == "list":
        element = field.inner.args[0]
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        items = [parse_text(line, element, f"{field.name}, line {n}") for n, line in enumerate(lines, 1)]
        return literal_of(items, field.tp, where)
    raw = text if field.inner.kind == "str" else text.strip()
    return literal_of(parse_text(raw, field.tp, field.name), field.tp, where)


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _upload(blobs: BlobStore, upload: UploadFile) -> str:
    """An uploaded file stored in the server's blob store (content-addressed, keeping its
    name); its URI, which the launch passes as the input."""
    name = _SAFE_NAME.sub("_", Path(upload.filename or "upload").name).strip("._") or "upload"
    with tempfile.TemporaryDirectory(prefix="plait-upload-") as folder:
        local = Path(folder) / name
        with open(local, "wb") as out:
            shutil.copyfileobj(upload.file, out)
        return blobs.put_file(local)


def _read_form(fields: list[Field], form: FormData, blobs: BlobStore) -> dict[str, Any]:
    """The literals of the fields' submitted values; each field's text is kept and its error
    set on it (an uploaded file's text becomes its URI, so a second try needs no upload)."""
    literals: dict[str, Any] = {}
    for field in fields:
        if field.fixed:
            continue
        upload = form.get(field.name + UPLOAD)
        if field.widget == "file" and isinstance(upload, UploadFile) and upload.filename:
            field.text = _upload(blobs, upload)
        elif field.widget == "checkbox":
            field.text = "true" if form.get(field.name) else "false"
        else:
            value = form.get(field.name, "")
            field.text = value if isinstance(value, str) else ""
        try:
            literal = _read(field, field.text)
        except InputError as exc:
            field.error = str(exc)
            continue
        if literal is not _MISSING:
            literals[field.name] = literal
    return literals


async def _form(request: Request) -> FormData:
    return await request.form()


Submitted = Annotated[FormData, Depends(_form)]


def _store(request: Request) -> EventStore:
    store: EventStore = request.app.state.store
    return store


# -- launch --------------------------------------------------------------------------------------


@dataclass
class Target:
    """What a launch form launches: a workflow version, through a launch plan version or not."""

    workflow: str
    version: str
    spec: WorkflowSpec
    plan: LaunchPlanSpec | None = None
    plan_version: str | None = None

    def fields(self) -> list[Field]:
        defaults = {**self.spec.defaults, **(self.plan.default_inputs if self.plan else {})}
        return _fields(self.spec, defaults, self.plan.fixed_inputs if self.plan else {})


def _latest(entities: EntityStore, project: str, domain: str, kind: str, name: str) -> str:
    versions = entities.list_versions(project, domain, kind, name)
    if not versions:
        raise HTTPException(404, f"no {kind.replace('_', ' ')} {name!r} is registered in {project}/{domain}; "
                                 f"`plait register` registers it")
    return versions[-1].version


def _body(entities: EntityStore, project: str, domain: str, kind: str, name: str, version: str) -> dict[str, Any]:
    found = entities.get(project, domain, kind, name, version)
    if found is None:
        raise HTTPException(404, f"no {kind.replace('_', ' ')} {name!r} version {version!r} in {project}/{domain}")
    return found.body


def _target(request: Request, project: str, domain: str, name: str, version: str | None,
            launch_plan: str | None) -> Target:
    entities = EntityStore(_store(request))
    if launch_plan:
        active = entities.active(project, domain, launch_plan)
        plan_version = version or (active.version if active else _latest(entities, project, domain, "launch_plan",
                                                                          launch_plan))
        plan = LaunchPlanSpec.model_validate(_body(entities, project, domain, "launch_plan", launch_plan, plan_version))
        if plan.workflow != name:
            raise HTTPException(404, f"launch plan {launch_plan!r} launches {plan.workflow!r}, not {name!r}")
        body = _body(entities, project, domain, "workflow", plan.workflow, plan.workflow_version)
        spec = WorkflowSpec.model_validate(RegisteredWorkflow.model_validate(body).spec)
        return Target(name, plan.workflow_version, spec, plan, plan_version)
    version = version or _latest(entities, project, domain, "workflow", name)
    body = _body(entities, project, domain, "workflow", name, version)
    return Target(name, version, WorkflowSpec.model_validate(RegisteredWorkflow.model_validate(body).spec))


def _plans_of(request: Request, project: str, domain: str, workflow: str) -> list[str]:
    """The launch plans (active, else latest version) that launch ``workflow``."""
    entities = EntityStore(_store(request))
    found = []
    for name in entities.names(project, domain, "launch_plan"):
        entity = entities.active(project, domain, name) or entities.list_versions(project, domain, "launch_plan",
                                                                                   name)[-1]
        if entity.body.get("workflow") == workflow:
            found.append(name)
    return found


def _launch_page(request: Request, user: Any, project: str, domain: str, target: Target, fields: list[Field],
                 error: str | None = None, status_code: int = 200) -> Response:
    role = allowed(request, user, project, "viewer", domain).role
    can_launch = _may(request, user, project, domain)
    return render(request, "launch.html", status_code=status_code, user=user, project=project, domain=domain,
                  nav="workflows", fields=fields, error=error, can_launch=can_launch, role=role,
                  heading=f"Launch {target.workflow}", workflow=target.workflow, version=target.version,
                  launch_plan=target.plan.name if target.plan else None, plan_version=target.plan_version,
                  plans=_plans_of(request, project, domain, target.workflow), relaunch_of=None)


def _may(request: Request, user: Any, project: str, domain: str) -> bool:
    try:
        allowed(request, user, project, "launcher", domain)
    except HTTPException:
        return False
    return True


@router.get("/projects/{project}/domains/{domain}/workflows/{name}/launch")
def launch_form(request: Request, user: ConsoleUser, project: str, domain: str, name: str,
                version: str | None = None, launch_plan: str | None = None) -> Response:
    allowed(request, user, project, "viewer", domain)
    if launch_plan is None and version is None and _launches(request, project, domain, name):
        launch_plan = name  # as `plait run --remote NAME`: the plan registered with the workflow, labels and all
    target = _target(request, project, domain, name, version, launch_plan)
    return _launch_page(request, user, project, domain, target, target.fields())


def _launches(request: Request, project: str, domain: str, name: str) -> bool:
    """Whether the launch plan named ``name`` (its active version, else its latest) launches the
    workflow ``name``."""
    return name in _plans_of(request, project, domain, name)


@router.post("/projects/{project}/domains/{domain}/workflows/{name}/launch")
def launch(request: Request, user: CsrfChecked, form: Submitted, project: str, domain: str,
           name: str) -> Response:
    access = allowed(request, user, project, "launcher", domain)
    plan = str(form.get("launch_plan") or "") or None
    version = str(form.get("version") or "") or None
    target = _target(request, project, domain, name, version, plan)
    fields = target.fields()
    literals = _read_form(fields, form, request.app.state.blobs)
    if any(f.error for f in fields):
        return _launch_page(request, user, project, domain, target, fields, status_code=422,
                            error="Some inputs need another value: see the fields marked below.")
    try:
        xid = launch_registered(_store(request), request.app.state.blobs, access.project, domain,
                                launch_plan=plan, workflow=None if plan else name, version=version,
                                inputs=literals, launched_by=access.user.name, platform=launch_platform())
    except PlaitError as exc:
        return _launch_page(request, user, project, domain, target, fields, error=str(exc), status_code=422)
    return RedirectResponse(f"/executions/{xid}", status_code=303)


# -- relaunch ------------------------------------------------------------------------------------


def _relaunch_fields(request: Request, execution_id: str, user: Any, needed: str) -> tuple[dict[str, Any], Any,
                                                                                            list[Field]]:
    row = visible_execution(request, user, execution_id, needed)
    store = _store(request)
    try:
        row, launched = launched_from(store, row["id"])
    except PlaitError as exc:
        raise HTTPException(400, str(exc)) from None
    spec = store.spec(row["version"])
    fixed: dict[str, Any] = {}
    if launched.launch_plan and launched.launch_plan_version:
        found = EntityStore(store).get(row["project"], row["domain"], "launch_plan", launched.launch_plan,
                                       launched.launch_plan_version)
        if found is not None:
            fixed = {n: launched.inputs.get(n) for n in LaunchPlanSpec.model_validate(found.body).fixed_inputs}
    return row, launched, _fields(spec, launched.inputs, fixed, defaults=False)


def _relaunch_page(request: Request, user: Any, row: dict[str, Any], launched: Any, fields: list[Field],
                   error: str | None = None, status_code: int = 200) -> Response:
    return render(request, "launch.html", status_code=status_code, user=user, project=row["project"],
                  domain=row["domain"], nav="executions", fields=fields, error=error,
                  can_launch=_may(request, user, row["project"], row["domain"]),
                  role=allowed(request, user, row["project"], "viewer").role,
                  heading=f"Relaunch {row['id']}", workflow=launched.workflow, version=launched.workflow_version,
                  launch_plan=launched.launch_plan, plan_version=launched.launch_plan_version, plans=[],
                  relaunch_of=row["id"])


@router.get("/executions/{execution_id}/relaunch")
def relaunch_form(request: Request, user: ConsoleUser, execution_id: str) -> Response:
    row, launched, fields = _relaunch_fields(request, execution_id, user, "viewer")
    return _relaunch_page(request, user, row, launched, fields)


@router.post("/executions/{execution_id}/relaunch")
def relaunch_execution(request: Request, user: CsrfChecked, form: Submitted, execution_id: str) -> Response:
    row, launched, fields = _relaunch_fields(request, execution_id, user, "launcher")
    edits = _read_form(fields, form, request.app.state.blobs)
    if any(f.error for f in fields):
        return _relaunch_page(request, user, row, launched, fields, status_code=422,
                              error="Some inputs need another value: see the fields marked below.")
    try:
        xid = relaunch(_store(request), row["id"], launched_by=user.name, inputs=edits)
    except PlaitError as exc:
        return _relaunch_page(request, user, row, launched, fields, error=str(exc), status_code=422)
    return RedirectResponse(f"/executions/{xid}", status_code=303)
