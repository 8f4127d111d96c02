"""What the scheduler keeps: a lease, and the last fire time handled per launch plan name
(when schedules fire is :mod:`plait.model.schedule_times`).

One scheduler at a time fires schedules: the one holding the ``leases`` row named
``scheduler`` until it expires. ``schedule_state`` records, per launch plan name, the last fire
time handled, so that a scheduler taking over (or starting after downtime) knows which fire
times were missed.

The lease is one conditional upsert, ``INSERT ... ON CONFLICT (name) DO UPDATE ... WHERE the
holder is me or the lease expired``, which SQLite and PostgreSQL both run atomically: on
PostgreSQL the conflicting row is locked and the condition evaluated against its latest version,
so of two servers taking an expired lease at once exactly one gets a row back; SQLite writes one
transaction at a time. A PostgreSQL advisory lock would end with its session on its own, but
lives in one connection the scheduler would have to hold open for ever, and does not exist on
SQLite; the row serves both and can be read (who leads, until when). Expiry times are wall-clock
seconds of the servers, which are assumed to agree to well within a lease's length.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from plait.storage.entities import active_launch_plans, entities
from plait.storage.events import EventStore, metadata

leases = sa.Table(
    "leases", metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
)

schedule_state = sa.Table(
    "schedule_state", metadata,
    sa.Column("project", sa.String(128), nullable=False),
    sa.Column("domain", sa.String(128), nullable=False),
    sa.Column("launch_plan", sa.String(512), nullable=False),
    sa.Column("last_fire", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("project", "domain", "launch_plan", name="pk_schedule_state"),
)


@dataclass(frozen=True)
class ActivePlan:
    """An active launch plan version, its body (a LaunchPlanSpec as JSON), when it was activated,
    and the last fire time its name's schedule handled (None: never fired)."""

    project: str
    domain: str
    name: str
    version: str
    activated: float
    body: dict[str, Any]
    last_fire: float | None


class ScheduleStore:
    """The scheduler's lease and schedule state in ``store``'s database."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.engine = store.engine

    # -- the leader lease ----------------------------------------------------------------------

    def hold(self, name: str, holder: str, now: float, lease_s: float) -> bool:
        """Take lease ``name`` for ``holder`` until ``now + lease_s`` if it is free, expired or
        already ``holder``'s (then it is renewed); whether ``holder`` holds it now."""
        insert = self.store._insert(leases).values(name=name, holder=holder, expires=now + lease_s)
        upsert = insert.on_conflict_do_update(
            index_elements=["name"],
            set_={"holder": insert.excluded.holder, "expires": insert.excluded.expires},
            where=sa.or_(leases.c.holder == holder, leases.c.expires < now),
        ).returning(leases.c.holder)
        with self.engine.begin() as conn:
            return conn.execute(upsert).first() is not None

    def release(self, name: str, holder: str) -> None:
        """Give lease ``name`` up, if ``holder`` holds it, so another can take it at once."""
        with self.engine.begin() as conn:
            conn.execute(leases.delete().where(leases.c.name == name, leases.c.holder == holder))

    def holder(self, name: str, now: float) -> str | None:
        """Who holds lease ``name`` at ``now`` (None: nobody, or it expired)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(leases).where(leases.c.name == name)).mappings().first()
        return str(row["holder"]) if row is not None and row["expires"] >= now else None

    # -- schedules ----------------------------------------------------------------------------

    def active_plans(self, project: str | None = None, domain: str | None = None) -> list[ActivePlan]:
        """Every active launch plan version (of one project and domain, if given), with its
        schedule's last fire time; whether it has a schedule is in its body."""
        lp = entities.alias("lp")
        state = schedule_state
        query = (
            sa.select(active_launch_plans, lp.c.body, state.c.last_fire)
            .join(lp, sa.and_(lp.c.project == active_launch_plans.c.project,
                              lp.c.domain == active_launch_plans.c.domain, lp.c.kind == "launch_plan",
                              lp.c.name == active_launch_plans.c.name,
                              lp.c.version == active_launch_plans.c.version))
            .outerjoin(state, sa.and_(state.c.project == active_launch_plans.c.project,
                                      state.c.domain == active_launch_plans.c.domain,
                                      state.c.launch_plan == active_launch_plans.c.name))
            .order_by(active_launch_plans.c.project, active_launch_plans.c.domain, active_launch_plans.c.name))
        if project is not None:
            query = query.where(active_launch_plans.c.project == project)
        if domain is not None:
            query = query.where(active_launch_plans.c.domain == domain)
        with self.engine.connect() as conn:
            return [ActivePlan(r["project"], r["domain"], r["name"], r["version"], r["activated"],
                               json.loads(r["body"]), r["last_fire"]) for r in conn.execute(query).mappings()]

    def advance(self, project: str, domain: str, launch_plan: str, fire_time: float) -> None:
        """Record ``fire_time`` as handled for the launch plan; never moves it back (a scheduler
        that lost its lease mid-tick may still be writing older times)."""
        insert = self.store._insert(schedule_state).values(
            project=project, domain=domain, launch_plan=launch_plan, last_fire=fire_time)
        with self.engine.begin() as conn:
            conn.execute(insert.on_conflict_do_update(
                index_elements=["project", "domain", "launch_plan"],
                set_={"last_fire": insert.excluded.last_fire},
                where=schedule_state.c.last_fire < insert.excluded.last_fire))
