"""``/projects/{project}/domains/{domain}/schedules``: the launch plans that fire by themselves.

Importing this module also registers the scheduler as a background service of the server
(:mod:`plait_server.scheduler`).
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from plait.model.api.schedules import ScheduledPlan
from plait.model.registered import LaunchPlanSpec
from plait.model.schedule_times import next_fire_time
from plait.storage.schedules import ScheduleStore

from plait_server import scheduler
from plait_server.app import API
from plait_server.auth import Viewer

router = APIRouter(prefix=API, tags=["schedules"])


@router.get("/projects/{project}/domains/{domain}/schedules")
def list_schedules(request: Request, domain: str, access: Viewer) -> list[ScheduledPlan]:
    """The active launch plan versions with a schedule, with their last and next fire times."""
    running: scheduler.Scheduler | None = getattr(request.app.state, "scheduler", None)
    now = running.clock() if running is not None else time.time()
    found = []
    for plan in ScheduleStore(request.app.state.store).active_plans(access.project, domain):
        spec = LaunchPlanSpec.model_validate(plan.body)
        if spec.schedule is None:
            continue
        since = max(now, plan.last_fire or plan.activated, plan.activated)
        found.append(ScheduledPlan(launch_plan=plan.name, version=plan.version, schedule=spec.schedule,
                                   activated=plan.activated, last_fire=plan.last_fire,
                                   next_fire=next_fire_time(spec.schedule, since, plan.activated)))
    return found
