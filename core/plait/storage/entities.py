"""Registered entities: tasks, workflows and launch plans, immutable per version.

An entity is keyed by (project, domain, kind, name, version) and its body is JSON. Registering
the same content again is a no-op; different content under an existing version is refused
with a diff of the two bodies. Registration is one ``INSERT ... ON CONFLICT DO NOTHING``
followed, when the row was there already, by a comparison of digests: two processes
registering one version at once never fail on each other, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from plait.model.errors import EntityConflictError, EntityNotFoundError, PlaitError
from plait.storage.events import EventStore, metadata

KINDS = ("task", "workflow", "launch_plan")

entities = sa.Table(
    "entities", metadata,
    sa.Column("project", sa.String(128), nullable=False),
    sa.Column("domain", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("version", sa.String(128), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.PrimaryKeyConstraint("project", "domain", "kind", "name", "version", name="pk_entities"),
)
_KEY = ["project", "domain", "kind", "name", "version"]

active_launch_plans = sa.Table(
    "active_launch_plans", metadata,
    sa.Column("project", sa.String(128), nullable=False),
    sa.Column("domain", sa.String(128), nullable=False),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("version", sa.String(128), nullable=False),
    sa.Column("activated", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("project", "domain", "name", name="pk_active_launch_plans"),
)
"""The one active version of each launch plan name (only its schedule fires)."""


@dataclass(frozen=True)
class Entity:
    project: str
    domain: str
    kind: str
    name: str
    version: str
    digest: str
    body: dict[str, Any]
    created: float
    archived: bool


@dataclass(frozen=True)
class NewEntity:
    """An entity to register: its kind, name, version and body."""

    kind: str
    name: str
    version: str
    body: dict[str, Any]

    @property
    def key(self) -> tuple[str, str, str]:
        return self.kind, self.name, self.version


@dataclass(frozen=True)
class RegisterResult:
    """What :meth:`EntityStore.register` did: ``created`` is False when the version was there."""

    entity: Entity
    created: bool


def canonical(body: dict[str, Any]) -> str:
    """The body as stored: JSON with sorted keys, so equal content has one text and digest."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(body).encode()).hexdigest()


class EntityStore:
    """Registered entities in ``store``'s database."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.engine = store.engine

    def register(self, project: str, domain: str, kind: str, name: str, version: str,
                 body: dict[str, Any]) -> RegisterResult:
        """Register ``body`` under its key; a no-op for the same content, an error for other content."""
        return self.register_all(project, domain, [NewEntity(kind, name, version, body)])[0]

    def register_all(self, project: str, domain: str, items: list[NewEntity]) -> list[RegisterResult]:
        """Register a set in one transaction: every entity, or none of them when any one is
        already registered with other content (EntityConflictError with a diff per conflict).

        Rows are inserted first, in key order, and compared after: the insert takes SQLite's
        write lock before anything is read (so a concurrent registration waits rather than fails),
        and on PostgreSQL two sets inserting the same keys queue in the same order (no deadlock).
        """
        for item in items:
            _check_kind(item.kind)
        ordered = sorted(items, key=lambda i: (i.kind, i.name, i.version))
        created: dict[tuple[str, str, str], bool] = {}
        rows: dict[tuple[str, str, str], Any] = {}
        conflicts: list[str] = []
        with self.engine.begin() as conn:
            now = time.time()
            for item in ordered:
                key = dict(project=project, domain=domain, kind=item.kind, name=item.name, version=item.version)
                created[item.key] = conn.execute(
                    self.store._insert(entities)
                    .values(**key, digest=digest(item.body), body=canonical(item.body), created=now, archived=False)
                    .on_conflict_do_nothing(index_elements=_KEY)
                    .returning(entities.c.digest)).first() is not None
            for item in ordered:
                key = dict(project=project, domain=domain, kind=item.kind, name=item.name, version=item.version)
                rows[item.key] = row = conn.execute(sa.select(entities).where(*_where(key))).mappings().one()
                if row["digest"] != digest(item.body):
                    conflicts.append(f"{item.kind} {item.name!r} version {item.version!r} in {project}/{domain} is "
                                     f"already registered with other content:\n"
                                     f"{_diff(json.loads(row['body']), item.body, item.version)}")
            if conflicts:  # raised inside the transaction: this set's inserts are rolled back
                raise EntityConflictError(
                    "\n".join(conflicts) + "\nNothing was registered; register the change under a new version.")
        return [RegisterResult(_entity(rows[item.key]), created[item.key]) for item in items]

    def get(self, project: str, domain: str, kind: str, name: str, version: str) -> Entity | None:
        """The entity under that key (archived or not), or None."""
        key = dict(project=project, domain=domain, kind=kind, name=name, version=version)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(entities).where(*_where(key))).mappings().first()
        return _entity(row) if row is not None else None

    def list_versions(self, project: str, domain: str, kind: str, name: str,
                      include_archived: bool = False) -> list[Entity]:
        """The entity's versions, oldest registration first."""
        key = dict(project=project, domain=domain, kind=kind, name=name)
        query = sa.select(entities).where(*_where(key))
        if not include_archived:
            query = query.where(entities.c.archived == sa.false())
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(entities.c.created, entities.c.version)).mappings()
            return [_entity(r) for r in rows]

    def names(self, project: str, domain: str, kind: str, include_archived: bool = False) -> list[str]:
        """The names ``kind`` is registered under in (project, domain), sorted; a name whose every
        version is archived only with ``include_archived``."""
        _check_kind(kind)
        query = (sa.select(entities.c.name).distinct()
                 .where(*_where(dict(project=project, domain=domain, kind=kind))))
        if not include_archived:
            query = query.where(entities.c.archived == sa.false())
        with self.engine.connect() as conn:
            return list(conn.execute(query.order_by(entities.c.name)).scalars())

    def archive(self, project: str, domain: str, kind: str, name: str, version: str) -> None:
        """Hide a version from :meth:`list_versions`; it stays readable with :meth:`get`. The
        active version of a launch plan is not archived: deactivate it first."""
        key = dict(project=project, domain=domain, kind=kind, name=name, version=version)
        with self.engine.begin() as conn:
            if kind == "launch_plan" and self._active_version(conn, project, domain, name) == version:
                raise PlaitError(f"launch plan {name!r} version {version!r} in {project}/{domain} is the active "
                                 "one; activate another version, or deactivate it, before archiving it")
            if conn.execute(entities.update().where(*_where(key)).values(archived=True)).rowcount == 0:
                raise EntityNotFoundError(f"no {kind} {name!r} version {version!r} in {project}/{domain}")

    # -- the active launch plan version ------------------------------------------------------------

    def activate(self, project: str, domain: str, name: str, version: str) -> Entity:
        """Make ``version`` the one active version of launch plan ``name`` (the one whose schedule
        fires), in place of any other; the launch plan entity it now is."""
        found = self.get(project, domain, "launch_plan", name, version)
        if found is None:
            raise EntityNotFoundError(f"no launch_plan {name!r} version {version!r} in {project}/{domain}")
        if found.archived:
            raise PlaitError(f"launch plan {name!r} version {version!r} in {project}/{domain} is archived; "
                             "activate a version that is not")
        values = dict(version=version, activated=time.time())
        with self.engine.begin() as conn:
            # Activating the active version again changes nothing: its activation time anchors
            # a fixed-rate schedule and bounds catch-up, so re-registering must not move it.
            conn.execute(self.store._insert(active_launch_plans)
                         .values(project=project, domain=domain, name=name, **values)
                         .on_conflict_do_update(index_elements=["project", "domain", "name"], set_=values,
                                                where=active_launch_plans.c.version != version))
        return found

    def deactivate(self, project: str, domain: str, name: str) -> None:
        """Leave launch plan ``name`` with no active version (its schedule stops firing)."""
        with self.engine.begin() as conn:
            conn.execute(active_launch_plans.delete().where(
                active_launch_plans.c.project == project, active_launch_plans.c.domain == domain,
                active_launch_plans.c.name == name))

    def active(self, project: str, domain: str, name: str) -> Entity | None:
        """The active version of launch plan ``name``, or None when none is."""
        with self.engine.connect() as conn:
            version = self._active_version(conn, project, domain, name)
        return None if version is None else self.get(project, domain, "launch_plan", name, version)

    @staticmethod
    def _active_version(conn: Any, project: str, domain: str, name: str) -> str | None:
        version = conn.execute(sa.select(active_launch_plans.c.version).where(
            active_launch_plans.c.project == project, active_launch_plans.c.domain == domain,
            active_launch_plans.c.name == name)).scalar()
        return None if version is None else str(version)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise PlaitError(f"an entity's kind is one of {', '.join(KINDS)}, not {kind!r}")


def _where(key: dict[str, str]) -> list[Any]:
    return [entities.c[column] == value for column, value in key.items()]


def _entity(row: Any) -> Entity:
    return Entity(row["project"], row["domain"], row["kind"], row["name"], row["version"],
                  row["digest"], json.loads(row["body"]), row["created"], bool(row["archived"]))


def _diff(registered: dict[str, Any], new: dict[str, Any], version: str) -> str:
    def lines(body: dict[str, Any]) -> list[str]:
        return (json.dumps(body, sort_keys=True, indent=2, default=str) + "\n").splitlines(keepends=True)

    return "".join(difflib.unified_diff(lines(registered), lines(new),
                                        f"registered {version}", f"new {version}"))
