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
        _check_kind(kind)
        key = dict(project=project, domain=domain, kind=kind, name=name, version=version)
        text, sha = canonical(body), digest(body)
        with self.engine.begin() as conn:
            inserted = conn.execute(
                self.store._insert(entities)
                .values(**key, digest=sha, body=text, created=time.time(), archived=False)
                .on_conflict_do_nothing(index_elements=_KEY)
                .returning(entities.c.digest)).first() is not None
            row = conn.execute(sa.select(entities).where(*_where(key))).mappings().one()
        entity = _entity(row)
        if entity.digest != sha:
            raise EntityConflictError(
                f"{kind} {name!r} version {version!r} in {project}/{domain} is already registered "
                f"with other content; register the change under a new version.\n"
                f"{_diff(entity.body, body, version)}")
        return RegisterResult(entity, created=inserted)

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

    def archive(self, project: str, domain: str, kind: str, name: str, version: str) -> None:
        """Hide a version from :meth:`list_versions`; it stays readable with :meth:`get`."""
        key = dict(project=project, domain=domain, kind=kind, name=name, version=version)
        with self.engine.begin() as conn:
            if conn.execute(entities.update().where(*_where(key)).values(archived=True)).rowcount == 0:
                raise EntityNotFoundError(f"no {kind} {name!r} version {version!r} in {project}/{domain}")


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
