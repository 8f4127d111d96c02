"""The event store: every state change of an execution, appended; state is their projection.

SQLAlchemy; SQLite in ``.plait/plait.db`` by default, any SQLAlchemy URL by configuration.
The schema is made and changed by the Alembic migrations in ``migrations/``, run on open;
the tables below must match them (a test compares the two).
Events are idempotent on (execution, entity, phase): appending the same change twice
records it once. The engine buffers events and writes them in batches; a crash can lose
the last batch, which is safe because submitting an attempt again attaches to its work.

Finished is final: an event that would move an execution, a node or an attempt that already
ended (succeeded, failed, timed out, aborted, skipped) in the same run to another phase is
refused. The database checks it as it inserts (one probe of the ``uq_event_once`` key per
such event), so a late engine in another process, one that lost its claim, cannot rewrite
history either. A refused event is not recorded and the write goes on: the writer is an
engine's batch, which can do nothing better with an error than lose its other events; it is
logged as a warning (logger ``plait.events``) and kept in :attr:`EventStore.refused`. A later
run (a resume) starts its entities afresh.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from plait.model.errors import ExecutionNotFoundError
from plait.model.events import Event
from plait.model.spec import WorkflowSpec
from plait.model.status import Phase
from plait.storage.migrations import ensure_schema

metadata = sa.MetaData()

executions = sa.Table(
    "executions", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("workflow", sa.String(512), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("project", sa.String(128), nullable=False),
    sa.Column("domain", sa.String(128), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("phase", sa.String(32), nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
    # the launch plan it was launched from (None: launched from code), and who launched it
    # (a user, or "schedule"; None: a local run)
    sa.Column("launch_plan", sa.String(512), nullable=True),
    sa.Column("launched_by", sa.String(128), nullable=True),
    # Listing a tenant's executions newest first, by keyset (plait.service.query), optionally
    # filtered by one column: each filter has its own index ending in (created, id).
    sa.Index("ix_executions_tenant", "project", "domain", "created", "id"),
    sa.Index("ix_executions_tenant_phase", "project", "domain", "phase", "created", "id"),
    sa.Index("ix_executions_workflow", "project", "domain", "workflow", "created", "id"),
    sa.Index("ix_executions_launch_plan", "project", "domain", "launch_plan", "created", "id"),
    sa.Index("ix_executions_launched_by", "project", "domain", "launched_by", "created", "id"),
)

execution_tags = sa.Table(
    "execution_tags", metadata,
    sa.Column("project", sa.String(128), nullable=False),
    sa.Column("domain", sa.String(128), nullable=False),
    sa.Column("tag", sa.String(256), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("execution_id", sa.String(64), nullable=False),
    # The tenant and the execution's created time are copied here so that listing by tag is a
    # keyset scan of this key alone, newest first.
    sa.PrimaryKeyConstraint("project", "domain", "tag", "created", "execution_id", name="pk_execution_tags"),
)

specs = sa.Table(
    "specs", metadata,
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)

events = sa.Table(
    "events", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("execution_id", sa.String(64), nullable=False),
    sa.Column("run", sa.Integer, nullable=False, default=0),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("entity", sa.String(512), nullable=False),
    sa.Column("phase", sa.String(32), nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.UniqueConstraint("execution_id", "run", "entity", "phase", name="uq_event_once"),
)

cache = sa.Table(
    "cache", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("task", sa.String(512), nullable=False),
    sa.Column("outputs", sa.Text, nullable=False),
    sa.Column("execution_id", sa.String(64), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)




def event_row(event: Event) -> dict[str, Any]:
    """``event`` as a row of ``events``, for writing it inside a transaction of one's own."""
    return dict(execution_id=event.execution_id, run=event.run, kind=event.kind, entity=event.entity,
                phase=_PHASE_TEXT[event.phase], ts=event.ts or time.time(),
                data=orjson.dumps(event.data, default=str, option=orjson.OPT_NON_STR_KEYS).decode())


@dataclass(frozen=True)
class Origin:
    """Where an execution came from, as its list filters see it: the launch plan it was launched
    from, who launched it (a user, or ``schedule``) and its tags. A local run has none."""

    launch_plan: str | None = None
    launched_by: str | None = None
    tags: tuple[str, ...] = ()


class EventStore:
    """Appends and reads events, specs, executions and cached results."""

    def __init__(self, url: str) -> None:
        self.url = url
        """The store's URL as given (with its password, if it has one: never print it; see :attr:`shown_url`)."""
        self.engine: Engine = sa.create_engine(url)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        ensure_schema(self.engine)  # the migrations; one query when the schema is at head
        self._buffer: list[tuple[Any, ...]] = []
        self._insert = _dialect_insert(self.engine)
        self._sqlite = self.engine.dialect.name == "sqlite"
        self.refused: deque[RefusedEvent] = deque(maxlen=100)
        """The latest events refused because their entity had already ended (see the module doc)."""

    @property
    def shown_url(self) -> str:
        """The store's URL as it may be printed or logged: its password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    # -- writing ---------------------------------------------------------------------------

    def append(self, event: Event) -> None:
        """Buffer ``event``; it is written by the next :meth:`flush` (automatic every 2,000)."""
        self._buffer.append((  # the phase as a plain str: sqlite3 binds a str subclass slowly
            event.execution_id, event.run, event.kind, event.entity, _PHASE_TEXT[event.phase],
            event.ts or time.time(),
            orjson.dumps(event.data, default=str, option=orjson.OPT_NON_STR_KEYS).decode(),
        ))
        if len(self._buffer) >= 2000:
            self.flush()

    def flush(self) -> None:
        """Write the buffered events in one transaction."""
        if not self._buffer:
            return
        rows, self._buffer = self._buffer, []
        try:
            with self.engine.begin() as conn:
                if self._sqlite:  # the hot path: skip SQLAlchemy's per-row parameter handling
                    # Rows are inserted one after another, so each sees the ones before it; runs
                    # of unguarded rows (a map's items: most of them) take the plain statement.
                    written = 0
                    for guarded, run in itertools.groupby(rows, key=_is_guarded):
                        statement = _SQLITE_GUARDED_INSERT if guarded else _SQLITE_INSERT
                        written += conn.exec_driver_sql(statement, list(run)).rowcount
                else:
                    written = conn.execute(_PG_GUARDED_INSERT, _pg_arrays(_drop_after_end(rows))).rowcount
                if written < len(rows):  # duplicates, or refused events: tell them apart (rare)
                    self._note_refused(conn, rows)
        except Exception:
            self._buffer[:0] = rows  # keep them for the next flush: no event is dropped
            raise

    def _note_refused(self, conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
        """Log the guarded rows of ``rows`` that are not recorded: their entity had ended."""
        for row in rows:
            if row[2] not in GUARDED_KINDS:
                continue
            execution_id, run, kind, entity, phase = row[:5]
            key = (events.c.execution_id == execution_id, events.c.run == run, events.c.entity == entity)
            if conn.execute(sa.select(events.c.seq).where(*key, events.c.phase == phase)).first():
                continue  # written now, or before (a duplicate: a no-op)
            ended = conn.execute(sa.select(events.c.phase).where(*key, events.c.phase.in_(ENDED))
                                 .order_by(events.c.seq).limit(1)).scalar()
            if ended is None:
                continue
            refused = RefusedEvent(execution_id, run, kind, entity, phase, ended)
            self.refused.append(refused)
            log.warning("%s", refused)

    def create_execution(self, execution_id: str, spec: WorkflowSpec, project: str, domain: str,
                         phase: str = "running", conn: sa.Connection | None = None, *,
                         origin: Origin | None = None) -> None:
        """Store the execution's row (in ``phase``) and its spec; inside ``conn``'s transaction if given."""
        if conn is None:
            with self.engine.begin() as conn:
                return self.create_execution(execution_id, spec, project, domain, phase, conn, origin=origin)
        origin = origin or Origin()
        now = time.time()
        # Executions of one workflow started together each store its spec: the first wins,
        # the others must not fail (a select-then-insert would, on either database).
        conn.execute(self._insert(specs).values(version=spec.version, name=spec.name, body=spec.model_dump_json())
                     .on_conflict_do_nothing(index_elements=["version"]))
        conn.execute(executions.insert().values(
            id=execution_id, workflow=spec.name, version=spec.version, project=project,
            domain=domain, created=now, phase=phase, updated=now, launch_plan=origin.launch_plan,
            launched_by=origin.launched_by))
        if origin.tags:
            conn.execute(execution_tags.insert(), [
                dict(project=project, domain=domain, tag=tag, created=now, execution_id=execution_id)
                for tag in sorted(set(origin.tags))])

    def set_execution_phase(self, execution_id: str, phase: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(executions.update().where(executions.c.id == execution_id)
                         .values(phase=phase, updated=time.time()))

    # -- reading ---------------------------------------------------------------------------

    def events(self, execution_id: str) -> Iterator[Event]:
        self.flush()
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(events).where(events.c.execution_id == execution_id)
                                .order_by(events.c.seq)).mappings()
            for r in rows:
                yield Event(r["execution_id"], r["kind"], r["entity"], Phase(r["phase"]),
                            json.loads(r["data"]), r["ts"], r["run"])

    def events_after(self, execution_id: str, after: int = 0, limit: int = 1000) -> list[tuple[int, Event]]:
        """Up to ``limit`` of the execution's events with a ``seq`` above ``after``, as (seq, event)."""
        self.flush()
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(events).where(events.c.execution_id == execution_id, events.c.seq > after)
                                .order_by(events.c.seq).limit(limit)).mappings().all()
        return [(r["seq"], Event(r["execution_id"], r["kind"], r["entity"], Phase(r["phase"]),
                                 json.loads(r["data"]), r["ts"], r["run"])) for r in rows]

    def execution(self, execution_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(executions).where(executions.c.id == execution_id)).mappings().first()
            if row is None:
                like = conn.execute(sa.select(executions.c.id).where(
                    executions.c.id.like(execution_id + "%"))).scalars().all()
                if len(like) == 1:
                    return self.execution(like[0])
                raise ExecutionNotFoundError(
                    f"no execution {execution_id!r} in {self.shown_url}; `plait executions list` shows them")
            return dict(row)

    def list_executions(self, limit: int = 20) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(executions).order_by(executions.c.created.desc()).limit(limit))
            return [dict(r) for r in rows.mappings()]

    def spec(self, version: str) -> WorkflowSpec:
        with self.engine.connect() as conn:
            body = conn.execute(sa.select(specs.c.body).where(specs.c.version == version)).scalar_one()
        return WorkflowSpec.model_validate_json(body)

    # -- cache -----------------------------------------------------------------------------

    def cached(self, key: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            body = conn.execute(sa.select(cache.c.outputs).where(cache.c.key == key)).scalar()
        return json.loads(body) if body is not None else None

    def put_cache(self, key: str, task: str, outputs: dict[str, Any], execution_id: str) -> None:
        # An upsert: engines that finish the same cached task at once must not collide, as a
        # delete-then-insert does on PostgreSQL. The last one to write wins.
        values = {"task": task, "execution_id": execution_id, "outputs": json.dumps(outputs), "created": time.time()}
        with self.engine.begin() as conn:
            conn.execute(self._insert(cache).values(key=key, **values)
                         .on_conflict_do_update(index_elements=["key"], set_=values))

    def close(self) -> None:
        self.flush()
        self.engine.dispose()


ENDED = ("succeeded", "failed", "timed_out", "aborted", "skipped")
"""The phases an execution, a node or an attempt does not leave within a run."""

GUARDED_KINDS = ("execution", "node", "attempt")
"""The kinds of event the finished-is-final guard applies to. A map item's attempts (kind
``item``) are not guarded: they are the engine's hot path (thousands per map), and the probe
per event cost a map of trivial items 1.2 to 1.3 times its time (bench/RESULTS.md); their node
is guarded. Graph and cleanup records are written once."""

log = logging.getLogger("plait.events")


@dataclass(frozen=True)
class RefusedEvent:
    """An event not recorded: its entity had already ended in that run."""

    execution_id: str
    run: int
    kind: str
    entity: str
    phase: str
    ended: str
    """The phase the entity had ended in."""

    def __str__(self) -> str:
        what = "the execution" if self.kind == "execution" else f"{self.kind} {self.entity!r}"
        return (f"refused an event moving {what} of execution {self.execution_id} (run {self.run}) to "
                f"{self.phase}: it had already ended {self.ended} (a late engine writing after another "
                "finished it?); not recorded")


_ENDED_SQL = ", ".join(f"'{p}'" for p in ENDED)
_GUARDED_SQL = ", ".join(f"'{k}'" for k in GUARDED_KINDS)

def _is_guarded(row: tuple[Any, ...]) -> bool:
    return row[2] in _GUARDED_SET


_GUARDED_SET = frozenset(GUARDED_KINDS)

_SQLITE_INSERT = ("INSERT OR IGNORE INTO events (execution_id, run, kind, entity, phase, ts, data) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)")

_SQLITE_GUARDED_INSERT = (
    "INSERT OR IGNORE INTO events (execution_id, run, kind, entity, phase, ts, data) "
    "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 "
    "WHERE NOT EXISTS (SELECT 1 FROM events "
    f"WHERE execution_id = ?1 AND run = ?2 AND entity = ?4 AND phase IN ({_ENDED_SQL}))")

_PG_GUARDED_INSERT = sa.text(
    "INSERT INTO events (execution_id, run, kind, entity, phase, ts, data) "
    "SELECT v.execution_id, v.run, v.kind, v.entity, v.phase, v.ts, v.data "
    "FROM unnest(CAST(:execution_id AS varchar[]), CAST(:run AS integer[]), CAST(:kind AS varchar[]), "
    "CAST(:entity AS varchar[]), CAST(:phase AS varchar[]), CAST(:ts AS double precision[]), "
    "CAST(:data AS text[])) WITH ORDINALITY AS v(execution_id, run, kind, entity, phase, ts, data, n) "
    f"WHERE v.kind NOT IN ({_GUARDED_SQL}) OR NOT EXISTS (SELECT 1 FROM events e "
    "WHERE e.execution_id = v.execution_id AND e.run = v.run AND e.entity = v.entity "
    f"AND e.phase IN ({_ENDED_SQL})) "
    "ORDER BY v.n ON CONFLICT DO NOTHING")
"""One statement for the whole batch, in order; the rows of one statement do not see each
other, so :func:`_drop_after_end` applies the guard within the batch first."""


def _drop_after_end(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    ended: dict[tuple[Any, ...], str] = {}
    kept = []
    for row in rows:
        if row[2] in GUARDED_KINDS:
            key = (row[0], row[1], row[3])
            if key in ended:
                continue  # refused, or a duplicate of the end (reported by _note_refused)
            if row[4] in ENDED:
                ended[key] = row[4]
        kept.append(row)
    return kept


def _pg_arrays(rows: list[tuple[Any, ...]]) -> dict[str, list[Any]]:
    columns = ("execution_id", "run", "kind", "entity", "phase", "ts", "data")
    return {name: [r[i] for r in rows] for i, name in enumerate(columns)}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _dialect_insert(engine: Engine) -> Any:
    """The database's own INSERT, which says what to do on a conflict (ON CONFLICT ...)."""
    if engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
        return insert
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        return pg_insert
    raise NotImplementedError(f"plait's event store supports SQLite and PostgreSQL, not {engine.dialect.name}")


# ---------------------------------------------------------------------------------------
# Projection
# ---------------------------------------------------------------------------------------


_PHASES = ("", *(p.value for p in Phase))
_PHASE_TEXT = {p.value: p.value for p in Phase}
"""A phase (a Phase or its text, equal and hashed alike) to its text as an exact str."""
_PHASE_CODE = {name: code for code, name in enumerate(_PHASES)}


@dataclass
class AttemptState:
    attempt_id: str
    node: str
    number: int
    phase: str = "queued"
    handle: dict[str, Any] | None = None
    message: str = ""
    error_kind: str | None = None
    logs: dict[str, str] = field(default_factory=dict)
    waiting: dict[str, Any] | None = None
    cleanup_error: str | None = None
    """Why the task type's cleanup failed, if it did (what it created may need removing by hand)."""


@dataclass
class NodeState:
    node: str
    phase: str = "queued"
    outputs: dict[str, Any] | None = None
    error: str | None = None
    cached: bool = False
    attempts: list[AttemptState] = field(default_factory=list)
    # Map nodes keep compact per-item state: counts and the failures, not an object per item.
    items: int | None = None
    item_counts: dict[str, int] = field(default_factory=dict)
    item_phases: bytearray = field(default_factory=bytearray, repr=False)
    """One byte per item: its phase's code (see _PHASES), 0 before it starts."""
    item_errors: dict[int, str] = field(default_factory=dict)
    graph: dict[str, Any] | None = None
    """A dynamic node's compiled sub-workflow: its version and number of nodes."""


@dataclass
class ExecutionState:
    """What an execution looks like after applying its events in order."""

    execution_id: str
    phase: str = "queued"
    workflow: str = ""
    version: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] | None = None
    error: str | None = None
    failed_node: str | None = None
    nodes: dict[str, NodeState] = field(default_factory=dict)
    _attempts: dict[str, AttemptState] = field(default_factory=dict, repr=False)

    def apply(self, event: Event) -> None:
        data = event.data
        if event.kind == "execution":
            self.phase = event.phase
            for key in ("workflow", "version", "inputs", "outputs", "error", "failed_node"):
                if key in data:
                    setattr(self, key, data[key])
        elif event.kind == "node":
            node = self._node(event.entity)
            node.phase = event.phase
            node.outputs = data.get("outputs", node.outputs)
            node.error = data.get("error", node.error)
            node.cached = node.cached or bool(data.get("cached"))
            if "items" in data:
                node.items = data["items"]
        elif event.kind == "attempt":
            attempt = self._attempts.get(event.entity)
            if attempt is None:
                attempt = AttemptState(event.entity, data["node"], data["attempt"])
                self._attempts[event.entity] = attempt
                self._node(data["node"]).attempts.append(attempt)
            attempt.phase = event.phase
            attempt.handle = data.get("handle", attempt.handle)
            attempt.message = data.get("message", attempt.message)
            attempt.error_kind = data.get("error_kind", attempt.error_kind)
            attempt.logs = data.get("logs", attempt.logs)
            attempt.waiting = data.get("waiting") if event.phase == "waiting_for_resources" else None
        elif event.kind == "item":
            node = self._node(data["node"])
            index = data["index"]
            phases = node.item_phases
            if index >= len(phases):
                phases.extend(bytes(max(index + 1, node.items or 0) - len(phases)))
            previous = phases[index]
            if previous:
                node.item_counts[_PHASES[previous]] -= 1
            phases[index] = _PHASE_CODE[event.phase]
            node.item_counts[event.phase] = node.item_counts.get(event.phase, 0) + 1
            if event.phase in ("failed", "timed_out"):
                node.item_errors[data["index"]] = data.get("message", "")
            else:
                node.item_errors.pop(data["index"], None)
        elif event.kind == "graph":
            self._node(event.entity.removesuffix("#graph")).graph = data
        elif event.kind == "cleanup":
            failed = self._attempts.get(event.entity.removesuffix("#cleanup"))
            if failed is not None:
                failed.cleanup_error = data.get("message", "")

    def _node(self, node_id: str) -> NodeState:
        node = self.nodes.get(node_id)
        if node is None:
            node = self.nodes[node_id] = NodeState(node_id)
        return node

    def snapshot(self) -> dict[str, Any]:
        """A plain-data view, for comparing a live state with a replayed one."""
        import dataclasses

        return {
            "phase": self.phase, "workflow": self.workflow, "version": self.version,
            "inputs": self.inputs, "outputs": self.outputs, "error": self.error,
            "failed_node": self.failed_node,
            "nodes": {k: dataclasses.asdict(v) for k, v in sorted(self.nodes.items())},
        }


def replay(execution_id: str, stream: Iterable[Event]) -> ExecutionState:
    """Rebuild an execution's state from its events."""
    state = ExecutionState(execution_id)
    for event in stream:
        state.apply(event)
    return state
