"""Lineage in the store: attempts' OpenLineage run events, and an index of the datasets they touched.

``lineage_events`` holds each event once per (execution, attempt, event type): recording an
attempt again (an engine that resumes and re-attaches to it) is a no-op. A row keeps the facts
the OpenLineage event is built from (:class:`~plait.model.lineage.RunRecord`), not the event's
JSON, which repeats its facets' producer and schema URLs: the rows stay small and cheap to
write, and reading builds the events. ``lineage_datasets``
answers "who produced this dataset, who read it" and "what did this execution touch" without
parsing events: one row per (dataset, attempt, direction), with the tenant copied in so that a
project's datasets are one index range. ``lineage_outbox`` lists the events still to be
forwarded to an OpenLineage endpoint (only when forwarding is configured); a row leaves it when
the endpoint accepted the event, so an endpoint that is down loses nothing.

Writes are buffered like the event store's and written by :meth:`LineageStore.flush`, which
the engine calls where it flushes its events.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa

from plait.model.api.lineage import DatasetUseOut
from plait.model.lineage import Dataset, Direction, RunRecord
from plait.storage.events import EventStore, metadata

DATASET_NAME = sa.String(1024).with_variant(sa.String(1024, collation="C"), "postgresql")
"""Compared by code point on both databases (SQLite's default), so that the names starting with
a prefix are one range of the index, and pages come in the same order on SQLite and PostgreSQL."""

EVENTS_INDEX = ("ix_lineage_events_execution", "execution_id", "seq")
"""An execution's run events in order: its pages are ranges of this index."""
LIST_INDEX = ("ix_lineage_datasets_tenant", "project", "name", "namespace", "domain", "direction", "ts")
"""A project's datasets by name: a page (and a name prefix) is a range of it, and it holds every
column the list counts, so the list reads the index alone. A domain is checked on its entries."""
EXECUTION_INDEX = ("ix_lineage_datasets_execution", "execution_id", "entity", "direction", "namespace", "name")
"""An execution's dataset uses by attempt, unique (the primary key's columns): its pages' key."""

lineage_events = sa.Table(
    "lineage_events", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("execution_id", sa.String(64), nullable=False),
    sa.Column("entity", sa.String(512), nullable=False),
    sa.Column("event_type", sa.String(16), nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.UniqueConstraint("execution_id", "entity", "event_type", name="uq_lineage_event_once"),
    sa.Index(*EVENTS_INDEX),
)

lineage_datasets = sa.Table(
    "lineage_datasets", metadata,
    sa.Column("namespace", sa.String(512), nullable=False),
    sa.Column("name", DATASET_NAME, nullable=False),
    sa.Column("execution_id", sa.String(64), nullable=False),
    sa.Column("entity", sa.String(512), nullable=False),
    sa.Column("direction", sa.String(8), nullable=False),
    sa.Column("project", sa.String(128), nullable=False),
    sa.Column("domain", sa.String(128), nullable=False),
    sa.Column("node", sa.String(512), nullable=False),
    sa.Column("task", sa.String(512), nullable=False),
    sa.Column("field", sa.String(512), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("namespace", "name", "execution_id", "entity", "direction", name="pk_lineage_datasets"),
    sa.Index(*LIST_INDEX),
    sa.Index(*EXECUTION_INDEX),
)

lineage_outbox = sa.Table(
    "lineage_outbox", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("tries", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.Text, nullable=True),
)


_SQLITE_INSERT = ("INSERT OR IGNORE INTO lineage_events (execution_id, entity, event_type, ts, body) "
                  "VALUES (?, ?, ?, ?, ?)")
"""The columns in the order :meth:`LineageStore.record` builds a row's dict."""


class LineageStore:
    """Reads and writes lineage in an :class:`EventStore`'s database (its tables are migrated with it)."""

    def __init__(self, store: EventStore) -> None:
        self.engine = store.engine
        self._insert = store._insert
        self._sqlite = self.engine.dialect.name == "sqlite"
        self._events: list[tuple[dict[str, Any], bool]] = []
        self._uses: list[dict[str, Any]] = []

    # -- writing ---------------------------------------------------------------------------

    def record(self, record: RunRecord, used: list[tuple[Dataset, Direction]], *, forward: bool = False) -> None:
        """Buffer one run event and the datasets its attempt ``used``; ``forward``: also queue it
        for the OpenLineage endpoint. Written by the next :meth:`flush`."""
        run = record.run
        self._events.append((dict(execution_id=run.execution_id, entity=run.entity, event_type=record.event_type,
                                  ts=record.at, body=record.to_json()), forward))
        self._uses.extend(dict(namespace=d.namespace, name=d.name, execution_id=run.execution_id, entity=run.entity,
                               direction=direction, project=run.project, domain=run.domain, node=run.node,
                               task=run.task, field=d.field, kind=d.kind, ts=record.at) for d, direction in used)

    def flush(self) -> None:
        """Write the buffered events and dataset uses in one transaction (kept on failure)."""
        if not self._events and not self._uses:
            return
        events, uses, self._events, self._uses = self._events, self._uses, [], []
        try:
            with self.engine.begin() as conn:
                insert = self._insert(lineage_events).on_conflict_do_nothing()
                kept = [row for row, forward in events if not forward]
                if kept and self._sqlite:  # skip SQLAlchemy's per-row parameter handling, as the event store does
                    conn.exec_driver_sql(_SQLITE_INSERT, [tuple(row.values()) for row in kept])
                elif kept:
                    conn.execute(insert, kept)
                to_send = [row for row, forward in events if forward]
                if to_send:  # the new events' seqs (one statement: insertmanyvalues) go to the outbox
                    seqs = conn.execute(insert.returning(lineage_events.c.seq), to_send).scalars().all()
                    if seqs:
                        conn.execute(lineage_outbox.insert(), [{"seq": seq, "tries": 0} for seq in seqs])
                if uses:
                    conn.execute(self._insert(lineage_datasets).on_conflict_do_nothing(), uses)
        except Exception:
            self._events[:0], self._uses[:0] = events, uses
            raise

    # -- forwarding ------------------------------------------------------------------------

    def pending(self, limit: int = 100) -> list[tuple[int, bytes]]:
        """The oldest events still to forward, as (seq, JSON body)."""
        query = (sa.select(lineage_events.c.seq, lineage_events.c.body)
                 .join(lineage_outbox, lineage_outbox.c.seq == lineage_events.c.seq)
                 .order_by(lineage_events.c.seq).limit(limit))
        with self.engine.connect() as conn:
            return [(seq, orjson.dumps(RunRecord.from_json(body).event())) for seq, body in conn.execute(query)]

    def delivered(self, seq: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(lineage_outbox.delete().where(lineage_outbox.c.seq == seq))

    def undeliverable(self, seq: int, error: str) -> None:
        """Note why forwarding event ``seq`` failed; it stays in the outbox for the next try."""
        with self.engine.begin() as conn:
            conn.execute(lineage_outbox.update().where(lineage_outbox.c.seq == seq)
                         .values(tries=lineage_outbox.c.tries + 1, error=error[:2000]))

    def undelivered(self) -> int:
        """How many events wait to be forwarded."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(lineage_outbox)).scalar_one())

    # -- reading ---------------------------------------------------------------------------
    # Every read is a keyset page: ``limit`` + 1 rows after the key ``after`` (so the caller
    # knows whether more follow), in the order of an index, never OFFSET.

    def events(self, execution_id: str, after: int = 0, limit: int | None = None) -> list[tuple[int, dict[str, Any]]]:
        """The execution's run events after seq ``after``, with their seqs, in the order they were recorded."""
        self.flush()
        c = lineage_events.c
        query = (sa.select(c.seq, c.body).where(c.execution_id == execution_id, c.seq > after)
                 .order_by(c.seq).limit(limit))
        with self.engine.connect() as conn:
            return [(seq, RunRecord.from_json(body).event()) for seq, body in conn.execute(query)]

    def uses(self, *where: Any, key: tuple[str, ...], after: tuple[str, ...] | None, limit: int) -> list[DatasetUseOut]:
        """Rows of the dataset index matching ``where`` (columns of :data:`lineage_datasets`), by the
        columns ``key`` (unique among those rows), after ``after``."""
        self.flush()
        query = sa.select(lineage_datasets).where(*where)
        with self.engine.connect() as conn:
            return [DatasetUseOut(**{**row, "attempt": row["entity"]})
                    for row in conn.execute(_keyset(query, key, after, limit)).mappings()]

    def datasets(self, project: str, domain: str | None = None, prefix: str | None = None,
                 after: tuple[str, str] | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """A tenant's datasets (a project's, in every domain without ``domain``) by name and
        namespace, those whose name starts with ``prefix``: how many attempts produced and read
        each, and when it was last touched."""
        self.flush()
        c = lineage_datasets.c
        where = [c.project == project] + ([c.domain == domain] if domain is not None else [])
        if prefix:
            where.append(c.name >= prefix)
            if (end := _after_prefix(prefix)) is not None:
                where.append(c.name < end)
        produced = sa.func.sum(sa.case((c.direction == "produced", 1), else_=0))
        query = (sa.select(c.name, c.namespace, produced.label("produced"),
                           (sa.func.count() - produced).label("read"), sa.func.max(c.ts).label("last"))
                 .where(*where).group_by(c.name, c.namespace))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(_keyset(query, ("name", "namespace"), after, limit)).mappings()]


def _keyset(query: sa.Select[Any], key: tuple[str, ...], after: tuple[str, ...] | None, limit: int) -> sa.Select[Any]:
    columns = [lineage_datasets.c[k] for k in key]
    if after is not None:
        query = query.where(sa.tuple_(*columns) > sa.tuple_(*after))
    return query.order_by(*columns).limit(limit + 1)


def _after_prefix(prefix: str) -> str | None:
    """The first string after every string starting with ``prefix``, by code point (None: none is)."""
    stripped = prefix.rstrip(chr(0x10FFFF))
    if not stripped:
        return None
    following = ord(stripped[-1]) + 1
    return stripped[:-1] + chr(0xE000 if 0xD800 <= following < 0xE000 else following)  # no surrogate
