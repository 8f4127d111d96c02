"""Registered workflows, tasks and launch plans of a tenant, and one workflow: its versions,
typed interface, tasks, launch plans and graph, all readable before anything has run."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from plait.model.registered import LaunchPlanSpec, RegisteredWorkflow
from plait.model.spec import WorkflowSpec
from plait.storage.access import role_at_least
from plait.storage.entities import EntityStore, entities
from starlette.responses import Response

from plait_server.console import ConsoleUser, allowed, render
from plait_server.console.execution_data import event_store, graph_of
from plait_server.console.pages.executions import when

router = APIRouter(include_in_schema=False)

KINDS = (("workflow", "Workflows"), ("launch_plan", "Launch plans"), ("task", "Tasks"))


@router.get("/projects/{project}/domains/{domain}/workflows")
def workflows(request: Request, user: ConsoleUser, project: str, domain: str) -> Response:
    allowed(request, user, project, "viewer", domain)
    query = (sa.select(entities.c.kind, entities.c.name, entities.c.version, entities.c.created)
             .where(entities.c.project == project, entities.c.domain == domain,
                    entities.c.archived == sa.false())
             .order_by(entities.c.kind, entities.c.name, entities.c.created))
    by_kind: dict[str, dict[str, list[str]]] = {kind: {} for kind, _ in KINDS}
    with event_store(request).engine.connect() as conn:
        for kind, name, version, _created in conn.execute(query):
            by_kind.setdefault(kind, {}).setdefault(name, []).append(version)
    return render(request, "workflows.html", user=user, project=project, domain=domain, nav="workflows",
                  kinds=KINDS, by_kind=by_kind)


@router.get("/projects/{project}/domains/{domain}/workflows/{name}")
def workflow(request: Request, user: ConsoleUser, project: str, domain: str, name: str,
             version: str | None = None) -> Response:
    role = allowed(request, user, project, "viewer", domain).role
    store = EntityStore(event_store(request))
    versions = store.list_versions(project, domain, "workflow", name)
    if not versions:
        raise HTTPException(404, f"no workflow {name!r} in {project}/{domain}")
    chosen = next((v for v in versions if v.version == version), None) if version else versions[-1]
    if chosen is None:
        found = store.get(project, domain, "workflow", name, version or "")
        if found is None:
            raise HTTPException(404, f"workflow {name!r} has no version {version!r} in {project}/{domain}")
        chosen = found
    spec = WorkflowSpec.model_validate(RegisteredWorkflow.model_validate(chosen.body).spec)
    plans = []
    for plan_name in store.names(project, domain, "launch_plan"):
        plan_versions = store.list_versions(project, domain, "launch_plan", plan_name)
        plan = LaunchPlanSpec.model_validate(plan_versions[-1].body)
        if plan.workflow == name:
            plans.append((plan, plan_versions[-1].version))
    return render(request, "workflow.html", user=user, project=project, domain=domain, nav="workflows",
                  name=name, versions=versions, chosen=chosen, registered=when(chosen.created), spec=spec, plans=plans,
                  inputs=_interface(spec), graph=graph_of(spec), can_launch=role_at_least(role, "launcher"))


def _interface(spec: WorkflowSpec) -> list[dict[str, Any]]:
    return [{"name": n, "type": t.describe(), "required": n not in spec.defaults,
             "default": json.dumps(spec.defaults[n]) if n in spec.defaults else None}
            for n, t in spec.inputs.items()]
