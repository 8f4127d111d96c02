"""The execution queue: executions created ``queued``, claimed by engines under a lease.

Launching an execution writes its executions row (phase ``queued``), its spec and a queue
row in one transaction. An engine process *claims* rows: it becomes the row's ``owner`` until
``lease_expires``, and renews the lease while the execution runs. A claim is atomic, so two
engines never hold one row: on PostgreSQL the candidates are locked with
``SELECT ... FOR UPDATE SKIP LOCKED`` (concurrent claimers take different rows instead of
waiting); on SQLite each row is taken by a conditional ``UPDATE ... WHERE owner IS NULL OR
lease_expires < now``, which only one claimer's statement can match. An engine that dies stops
renewing; once its lease has expired another engine claims the row and resumes the execution
from its events. The row is deleted when the execution ends.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from plait.model.errors import PlaitError
from plait.model.events import Event
from plait.model.spec import WorkflowSpec
from plait.model.status import Phase
from plait.storage.events import EventStore, Origin, event_row, events, executions, metadata

queue = sa.Table(
    "queue", metadata,
    sa.Column("execution_id", sa.String(64), primary_key=True),
    sa.Column("inputs", sa.Text, nullable=False),
    sa.Column("options", sa.Text, nullable=False),
    sa.Column("enqueued", sa.Float, nullable=False),
    sa.Column("owner", sa.String(128), nullable=True),
    sa.Column("lease_expires", sa.Float, nullable=True),
    # when someone asked to abort it, and who: the engine holding it aborts it at its next renewal
    sa.Column("abort_requested", sa.Float, nullable=True),
    sa.Column("abort_by", sa.String(128), nullable=True),
    sa.Index("ix_queue_claim", "lease_expires", "enqueued"),
)


@dataclass(frozen=True)
class Claim:
    """A queued execution an engine now holds: its id, input literals and run options."""

    execution_id: str
    inputs: dict[str, Any]
    options: dict[str, Any]
    enqueued: float


AbortOutcome = Literal["aborted", "requested", "ended"]
"""What :meth:`ExecutionQueue.request_abort` did."""


def new_owner() -> str:
    """An engine id that says where it runs: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def owner_is_gone(owner: str) -> bool:
    """Whether ``owner`` (see :func:`new_owner`) was a process on this machine that has ended.

    Only then is its claim known to be stale before its lease expires; an owner on another
    machine (or not named this way) is presumed alive until then.
    """
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class ClaimHeldError(PlaitError):
    """Another engine holds the execution's claim: running it here too would run it twice."""


def _claimable(now: float) -> Any:
    return sa.or_(queue.c.owner.is_(None), queue.c.lease_expires < now)


class ExecutionQueue:
    """Queued executions in ``store``'s database, and the claims engines hold on them.

    ``clock`` (seconds, like :func:`time.time`) decides when leases expire; tests pass their own.
    """

    def __init__(self, store: EventStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._postgres = store.engine.dialect.name == "postgresql"  # the table comes with the migrations

    def enqueue(self, execution_id: str, spec: WorkflowSpec, inputs: dict[str, Any], options: dict[str, Any],
                project: str = "default", domain: str = "development", *, owner: str | None = None,
                lease_s: float = 30.0, origin: Origin | None = None, first_events: Sequence[Event] = ()) -> Claim:
        """Create the execution (phase ``queued``) and its queue row, in one transaction.

        With ``owner`` the row is created already claimed by it (``plait run`` creates and
        claims in one step): should that process die, its lease expires and an engine resumes it.
        ``first_events`` are written in the same transaction (how it was launched, say), so the
        execution never exists without them.
        """
        now = self.clock()
        with self.store.engine.begin() as conn:
            self.store.create_execution(execution_id, spec, project, domain, phase="queued", conn=conn, origin=origin)
            conn.execute(queue.insert().values(
                execution_id=execution_id, inputs=json.dumps(inputs), options=json.dumps(options),
                enqueued=now, owner=owner, lease_expires=None if owner is None else now + lease_s))
            if first_events:
                conn.execute(events.insert(), [event_row(e) for e in first_events])
        return Claim(execution_id, inputs, options, now)

    def claim(self, owner: str, lease_s: float, limit: int = 1) -> list[Claim]:
        """Take up to ``limit`` rows nobody holds (or whose lease expired), oldest first."""
        if limit <= 0:
            return []
        now = self.clock()
        candidates = (sa.select(queue).where(_claimable(now))
                      .order_by(queue.c.enqueued, queue.c.execution_id).limit(limit))
        taken: list[Claim] = []
        with self.store.engine.begin() as conn:
            if self._postgres:
                rows = conn.execute(candidates.with_for_update(skip_locked=True)).mappings().all()
                if rows:
                    conn.execute(queue.update().where(queue.c.execution_id.in_([r["execution_id"] for r in rows]))
                                 .values(owner=owner, lease_expires=now + lease_s))
                taken = [_claim(r) for r in rows]
            else:
                for r in conn.execute(candidates).mappings().all():
                    # Another claimer may have taken it since the select: the condition is
                    # evaluated again by the update itself, which only one of them can win.
                    won = conn.execute(queue.update().where(
                        queue.c.execution_id == r["execution_id"], _claimable(now))
                        .values(owner=owner, lease_expires=now + lease_s)).rowcount
                    if won:
                        taken.append(_claim(r))
        return taken

    def claim_for_resume(self, owner: str, execution_id: str, options: dict[str, Any], lease_s: float) -> Claim:
        """Claim one existing execution to resume it here (``plait executions resume``).

        Its queue row is taken if nobody holds it (or the holder's lease expired), and made if
        it has none (it ended, or predates the queue): either way no engine claims it while
        this resume runs. Held by a live engine, it is an error naming that engine.
        """
        now = self.clock()
        with self.store.engine.begin() as conn:
            select = sa.select(queue).where(queue.c.execution_id == execution_id)
            row = conn.execute(select.with_for_update() if self._postgres else select).mappings().first()
            if row is None:
                conn.execute(queue.insert().values(
                    execution_id=execution_id, inputs="{}", options=json.dumps(options), enqueued=now,
                    owner=owner, lease_expires=now + lease_s))
                return Claim(execution_id, {}, options, now)
            free = _claimable(now)
            if row["owner"] and owner_is_gone(row["owner"]):  # its engine died on this machine: no wait
                free = queue.c.owner == row["owner"]
            won = conn.execute(queue.update().where(queue.c.execution_id == execution_id, free)
                               .values(owner=owner, lease_expires=now + lease_s, options=json.dumps(options))).rowcount
            if not won:
                raise ClaimHeldError(
                    f"execution {execution_id} is being run by engine {row['owner']} (its claim lasts until "
                    f"{time.strftime('%H:%M:%S', time.localtime(row['lease_expires']))}): stop that engine, or "
                    f"wait for the claim to expire if it died")
            return Claim(execution_id, json.loads(row["inputs"]), options, row["enqueued"])

    def renew(self, owner: str, ids: Iterable[str], lease_s: float) -> set[str]:
        """Extend ``owner``'s leases on ``ids``; returns the ids it still holds (a claim lost
        to another engine after its lease expired is not among them: stop running it)."""
        ids = list(ids)
        if not ids:
            return set()
        mine = sa.and_(queue.c.owner == owner, queue.c.execution_id.in_(ids))
        with self.store.engine.begin() as conn:
            conn.execute(queue.update().where(mine).values(lease_expires=self.clock() + lease_s))
            return set(conn.execute(sa.select(queue.c.execution_id).where(mine)).scalars())

    def finish(self, owner: str, execution_id: str) -> bool:
        """Remove an ended execution's row, if ``owner`` still holds it; whether it did."""
        with self.store.engine.begin() as conn:
            return bool(conn.execute(queue.delete().where(
                queue.c.execution_id == execution_id, queue.c.owner == owner)).rowcount)

    def started(self, execution_id: str) -> bool:
        """Whether the execution has events beyond its launch (``queued``): an earlier owner
        ran some of it, so resume it."""
        self.store.flush()
        with self.store.engine.connect() as conn:
            return conn.execute(sa.select(events.c.seq).where(events.c.execution_id == execution_id,
                                                              events.c.phase != "queued")
                                .limit(1)).first() is not None

    def request_abort(self, execution_id: str, by: str) -> AbortOutcome:
        """Ask for a queued execution to be aborted; returns what happened.

        ``aborted``: nobody had claimed it, so it is aborted now (its row removed, its phase
        ``aborted``, an event says who aborted it). ``requested``: an engine holds it; that
        engine aborts it at its next renewal (see :meth:`abort_requests`). ``ended``: it is not
        in the queue (it ended, or never was queued), so there is nothing to abort.
        """
        now = self.clock()
        with self.store.engine.begin() as conn:  # the row, the event and the phase change at once
            if conn.execute(queue.delete().where(queue.c.execution_id == execution_id,
                                                 queue.c.owner.is_(None))).rowcount:
                ended = Event(execution_id, "execution", "", Phase.ABORTED,
                              {"error": f"aborted by {by} before it started", "aborted_by": by}, time.time())
                conn.execute(self.store._insert(events).values(**event_row(ended)).on_conflict_do_nothing(
                    index_elements=["execution_id", "run", "entity", "phase"]))
                conn.execute(executions.update().where(executions.c.id == execution_id)
                             .values(phase=Phase.ABORTED.value, updated=ended.ts))
                return "aborted"
            asked = conn.execute(queue.update().where(queue.c.execution_id == execution_id)
                                 .values(abort_requested=sa.func.coalesce(queue.c.abort_requested, now),
                                         abort_by=sa.func.coalesce(queue.c.abort_by, by))).rowcount
            return "requested" if asked else "ended"

    def abort_requests(self, ids: Iterable[str]) -> dict[str, str]:
        """Of ``ids``, those someone asked to abort, and who asked."""
        ids = list(ids)
        if not ids:
            return {}
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(queue.c.execution_id, queue.c.abort_by).where(
                queue.c.execution_id.in_(ids), queue.c.abort_requested.is_not(None)))
            return {r.execution_id: r.abort_by or "someone" for r in rows}

    def rows(self) -> list[dict[str, Any]]:
        """Every queued row (held or not), oldest first: for status pages and tests."""
        with self.store.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(queue).order_by(queue.c.enqueued)).mappings()]


def _claim(row: Any) -> Claim:
    return Claim(row["execution_id"], json.loads(row["inputs"]), json.loads(row["options"]), row["enqueued"])
