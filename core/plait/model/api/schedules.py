"""Schedules over the API: which launch plans fire by themselves, and when next."""

from __future__ import annotations

from pydantic import BaseModel, Field

from plait.model.registered import Schedule


class ScheduledPlan(BaseModel):
    """An active launch plan version with a schedule (times are epoch seconds)."""

    launch_plan: str
    version: str
    schedule: Schedule
    activated: float = Field(description="When this version was activated; its schedule counts from here")
    last_fire: float | None = Field(description="The last fire time handled; None: it has not fired yet")
    next_fire: float | None = Field(description="The next fire time; None: it never fires again")
