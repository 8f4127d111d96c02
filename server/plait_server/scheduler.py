"""The scheduler: a background service of the server that starts scheduled launch plans.

Every server runs one; only the one holding the ``scheduler`` lease (see
:mod:`plait.storage.schedules`) fires, and renews the lease each tick and before each launch.
Each tick it reads every active launch plan version that has a schedule, computes the fire
times due since the last one handled (from the version's activation time the first time: no
backfill before it), applies the catch-up policy (:func:`plait.model.schedule_times.due_fire_times`),
starts an execution for each and records the fire time as handled.

Nothing is started twice: an execution's id derives from (project, domain, launch plan,
version, fire time) (:func:`~plait.model.schedule_times.scheduled_execution_id`), so a second
scheduler that fires the same time (a leader that stalled past its lease while another took
over, or one restarted between a launch and recording it) collides with the executions table's
primary key, which is taken as "already started".

Configured by environment variables:

- ``PLAIT_SERVER_SCHEDULER``: ``0`` runs no scheduler in this server (default ``1``).
- ``PLAIT_SERVER_SCHEDULER_TICK_S``: seconds between ticks (default 1).
- ``PLAIT_SERVER_SCHEDULER_LEASE_S``: how long the leader's lease lasts unrenewed (default 15):
  how long schedules wait when a leader dies without giving the lease up.
- ``PLAIT_SERVER_CLOCK_FILE``: **for tests only**: a file holding the time (epoch seconds) the
  scheduler takes as now, read every tick, so a test can run a simulated hour in seconds. The
  lease keeps the real clock (it measures whether servers are alive, not when schedules fire).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from plait.model.errors import PlaitError
from plait.model.registered import LaunchPlanSpec
from plait.model.schedule_times import due_fire_times, scheduled_execution_id
from plait.service.remote_launch import launch_registered
from plait.storage.blobs import BlobStore
from plait.storage.events import EventStore
from plait.storage.schedules import ActivePlan, ScheduleStore

from plait_server.app import services

log = logging.getLogger("plait.server.scheduler")

LEASE = "scheduler"
"""The ``leases`` row the leader holds."""

LAUNCHED_BY = "schedule"
"""What a scheduled execution's ``launched_by`` says."""

Clock = Callable[[], float]


@dataclass
class SchedulerSettings:
    """The scheduler's settings (see the module's docstring for the variables)."""

    enabled: bool = True
    tick_s: float = 1.0
    lease_s: float = 15.0
    clock_file: str | None = None

    @classmethod
    def from_env(cls) -> SchedulerSettings:
        env = os.environ
        try:
            settings = cls(enabled=env.get("PLAIT_SERVER_SCHEDULER", "1") not in ("0", "false", "no", "off"),
                           tick_s=float(env.get("PLAIT_SERVER_SCHEDULER_TICK_S", "1")),
                           lease_s=float(env.get("PLAIT_SERVER_SCHEDULER_LEASE_S", "15")),
                           clock_file=env.get("PLAIT_SERVER_CLOCK_FILE") or None)
        except ValueError as exc:
            raise PlaitError(f"PLAIT_SERVER_SCHEDULER_TICK_S and _LEASE_S are seconds: {exc}") from None
        if settings.tick_s <= 0 or settings.lease_s <= settings.tick_s:
            raise PlaitError(f"the scheduler's tick ({settings.tick_s:g}s) must be above 0 and shorter than its "
                             f"lease ({settings.lease_s:g}s), or the leader loses the lease between ticks")
        return settings


def file_clock(path: str | Path) -> Clock:
    """A clock reading epoch seconds from ``path`` (tests rewrite it); while the file is being
    replaced or unreadable, the last time read."""
    last: list[float] = []

    def now() -> float:
        try:
            last[:] = [float(Path(path).read_text().strip())]
        except (OSError, ValueError):
            if not last:
                raise PlaitError(f"PLAIT_SERVER_CLOCK_FILE {path}: no time in it yet (write epoch seconds)") from None
        return last[0]

    return now


class Scheduler:
    """Fires the active launch plans' schedules into ``store``'s queue while it holds the lease.

    ``clock`` is when schedules fire (injectable for tests); ``lease_clock`` times the lease.
    """

    def __init__(self, store: EventStore, blobs: BlobStore | None = None, *, clock: Clock = time.time,
                 lease_clock: Clock = time.time, lease_s: float = 15.0, holder: str | None = None) -> None:
        self.store, self.blobs = store, blobs
        self.schedules = ScheduleStore(store)
        self.clock, self.lease_clock, self.lease_s = clock, lease_clock, lease_s
        # host:pid:nonce, kept within the leases column (a long host name loses its end)
        self.holder = holder or f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.leading = False

    def hold_lease(self) -> bool:
        """Take or renew the lease; whether this scheduler leads now."""
        leading = self.schedules.hold(LEASE, self.holder, self.lease_clock(), self.lease_s)
        if leading != self.leading:
            log.info("scheduler %s %s", self.holder, "leads" if leading else "no longer leads")
        self.leading = leading
        return leading

    def release(self) -> None:
        """Give the lease up (on shutdown), so another server's scheduler takes over at once."""
        if self.leading:
            self.schedules.release(LEASE, self.holder)
            self.leading = False

    def tick(self) -> list[str]:
        """One round: if this scheduler leads, start every due fire time; the ids of the
        executions fired (or found already started)."""
        if not self.hold_lease():
            return []
        now = self.clock()
        fired: list[str] = []
        for plan in self.schedules.active_plans():
            try:
                if not self._fire(plan, now, fired):
                    break
            except Exception:  # one broken plan (or a database hiccup) must not stop the others
                log.exception("schedule of launch plan %s version %s in %s/%s failed this tick",
                              plan.name, plan.version, plan.project, plan.domain)
        return fired

    def _fire(self, plan: ActivePlan, now: float, fired: list[str]) -> bool:
        """Start ``plan``'s due fire times; False when the lease was lost meanwhile."""
        spec = LaunchPlanSpec.model_validate(plan.body)
        if spec.schedule is None:
            return True
        # The first time (or when a newer version was activated since) it counts from the
        # activation: fire times before it belong to no active version.
        since = max(plan.last_fire if plan.last_fire is not None else plan.activated, plan.activated)
        for fire_time in due_fire_times(spec.schedule, since, now, plan.activated):
            if not self.hold_lease():
                return False
            xid = scheduled_execution_id(plan.project, plan.domain, plan.name, plan.version, fire_time)
            try:
                self._launch(plan, fire_time, xid)
                fired.append(xid)
            except PlaitError as exc:
                # It can never start (its workflow version is missing, an input is bad): say
                # so and go on, rather than trying this fire time for ever.
                log.error("schedule of launch plan %s version %s in %s/%s: fire time %s not started: %s",
                          plan.name, plan.version, plan.project, plan.domain, _utc(fire_time), exc)
            self.schedules.advance(plan.project, plan.domain, plan.name, fire_time)
        return True

    def run(self, stopping: threading.Event, tick_s: float) -> None:
        """Tick every ``tick_s`` seconds until ``stopping`` is set, then give the lease up."""
        try:
            while not stopping.is_set():
                try:
                    self.tick()
                except Exception:  # the database away for a moment: try again next tick
                    log.exception("scheduler tick failed; trying again in %gs", tick_s)
                stopping.wait(tick_s)
        finally:
            try:
                self.release()
            except Exception:
                log.exception("scheduler could not give its lease up; it expires in %gs", self.lease_s)

    def _launch(self, plan: ActivePlan, fire_time: float, xid: str) -> None:
        """Queue the execution for ``fire_time`` under ``xid``; nothing when it exists already
        (another scheduler, or this one before a restart, started it): :func:`launch_registered`
        returns an existing id as it is, and of two inserting it at once the executions table's
        primary key lets one in."""
        launch_registered(self.store, self.blobs, plan.project, plan.domain, launch_plan=plan.name,
                          version=plan.version, launched_by=LAUNCHED_BY, fire_time=fire_time, execution_id=xid,
                          platform=os.environ.get("PLAIT_PLATFORM") or "local")


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def start(app: FastAPI) -> Callable[[], None]:
    """The server's scheduler service: a thread ticking until the server stops."""
    settings = SchedulerSettings.from_env()
    if not settings.enabled:
        return lambda: None
    clock = file_clock(settings.clock_file) if settings.clock_file else time.time
    # A store of its own: launching buffers events, and an EventStore's buffer is not shared
    # across threads (the API's handlers use the app's).
    store = EventStore(app.state.store.url)
    scheduler = Scheduler(store, app.state.blobs, clock=clock, lease_s=settings.lease_s)
    app.state.scheduler = scheduler
    stopping = threading.Event()
    thread = threading.Thread(target=scheduler.run, args=(stopping, settings.tick_s), name="plait-scheduler",
                              daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join(30)
        store.close()

    return stop


services.append(start)
