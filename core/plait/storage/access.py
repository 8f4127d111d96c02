"""Who may do what: projects and their domains, users, API keys and per-project roles.

An API key reads ``plait_<id>_<secret>``. Only the SHA-256 of the secret is stored (the secret
is 256 random bits, so a slow hash would add nothing); the key is shown once, when it is made,
and checked by id, then by comparing digests in constant time. A key belongs to a user, may
expire and may be revoked; a revoked or expired key, or a disabled user's, authenticates no one.

Roles are per project and ordered: ``viewer`` reads, ``launcher`` also launches, aborts and
relaunches, ``editor`` also registers and archives, ``admin`` also manages members, keys and the
project's settings. A user marked ``admin`` administers the whole server (creates projects and
users) and holds the admin role in every project.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from plait.model.errors import InputError, PlaitError
from plait.storage.events import EventStore, metadata

ROLES = ("viewer", "launcher", "editor", "admin")
"""Project roles, each allowed what the ones before it are."""

DEFAULT_DOMAINS = ("development", "staging", "production")

NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
"""Project, domain and user names: a DNS label (a namespace may be made of them)."""

KEY_PREFIX = "plait_"

projects = sa.Table(
    "projects", metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("domains", sa.Text, nullable=False),  # a JSON list of names
    sa.Column("created", sa.Float, nullable=False),
)

users = sa.Table(
    "users", metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("admin", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created", sa.Float, nullable=False),
)

api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user", sa.String(128), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("expires", sa.Float, nullable=True),
    sa.Column("revoked", sa.Float, nullable=True),
    sa.Column("last_used", sa.Float, nullable=True),
    sa.Index("ix_api_keys_user", "user"),
)

members = sa.Table(
    "members", metadata,
    sa.Column("project", sa.String(128), nullable=False),
    sa.Column("user", sa.String(128), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.PrimaryKeyConstraint("project", "user", name="pk_members"),
    sa.Index("ix_members_user", "user"),
)


class AccessError(PlaitError):
    """A user, key, project or role that does not exist or is not allowed."""


@dataclass(frozen=True)
class User:
    name: str
    admin: bool
    disabled: bool
    created: float


@dataclass(frozen=True)
class ApiKey:
    """A key's record (never its secret)."""

    id: str
    user: str
    description: str
    created: float
    expires: float | None
    revoked: float | None
    last_used: float | None

    def usable(self, now: float) -> bool:
        return self.revoked is None and (self.expires is None or self.expires > now)


@dataclass(frozen=True)
class Project:
    name: str
    description: str
    domains: tuple[str, ...]
    created: float


def role_at_least(role: str | None, needed: str) -> bool:
    """Whether ``role`` allows what ``needed`` does (None, no role, allows nothing)."""
    return role is not None and ROLES.index(role) >= ROLES.index(needed)


def check_name(what: str, name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InputError(f"{what} name {name!r} is not valid: use lower-case letters, digits and '-', "
                         f"starting and ending with a letter or digit, at most 63 characters")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InputError(f"a role is one of {', '.join(ROLES)}, not {role!r}")
    return role


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class AccessStore:
    """Projects, users, keys and roles in ``store``'s database.

    ``clock`` (seconds, like :func:`time.time`) decides expiry; tests pass their own.
    """

    LAST_USED_EVERY_S = 60.0
    """A key's ``last_used`` is written at most this often (not a write per request)."""

    def __init__(self, store: EventStore, clock: Callable[[], float] = time.time) -> None:
        self.engine = store.engine
        self.clock = clock
        self._insert = store._insert

    # -- users and keys ----------------------------------------------------------------------

    def create_user(self, name: str, admin: bool = False) -> User:
        check_name("a user", name)
        now = self.clock()
        with self.engine.begin() as conn:
            created = conn.execute(self._insert(users).values(name=name, admin=admin, disabled=False, created=now)
                                   .on_conflict_do_nothing(index_elements=["name"])).rowcount
        if not created:
            raise AccessError(f"user {name!r} exists already")
        return User(name, admin, False, now)

    def user(self, name: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.name == name)).mappings().first()
        return None if row is None else User(row["name"], bool(row["admin"]), bool(row["disabled"]), row["created"])

    def list_users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(users).order_by(users.c.name)).mappings().all()
        return [User(r["name"], bool(r["admin"]), bool(r["disabled"]), r["created"]) for r in rows]

    def set_disabled(self, name: str, disabled: bool) -> None:
        with self.engine.begin() as conn:
            if not conn.execute(users.update().where(users.c.name == name).values(disabled=disabled)).rowcount:
                raise AccessError(f"no user {name!r}")

    def create_key(self, user: str, expires_in_s: float | None = None, description: str = "") -> tuple[ApiKey, str]:
        """A new key for ``user``: its record, and the key itself (shown once, stored as a hash)."""
        if self.user(user) is None:
            raise AccessError(f"no user {user!r}: create the user first")
        if expires_in_s is not None and expires_in_s <= 0:
            raise InputError(f"a key's lifetime is positive, not {expires_in_s:g} seconds")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        now = self.clock()
        record = ApiKey(key_id, user, description, now, None if expires_in_s is None else now + expires_in_s,
                        None, None)
        with self.engine.begin() as conn:
            conn.execute(api_keys.insert().values(
                id=key_id, user=user, digest=_digest(secret), description=description, created=now,
                expires=record.expires))
        return record, f"{KEY_PREFIX}{key_id}_{secret}"

    def keys(self, user: str | None = None) -> list[ApiKey]:
        """The keys of ``user`` (every user's with None), newest first."""
        query = sa.select(api_keys).order_by(api_keys.c.created.desc())
        if user is not None:
            query = query.where(api_keys.c.user == user)
        with self.engine.connect() as conn:
            return [_key(r) for r in conn.execute(query).mappings()]

    def key(self, key_id: str) -> ApiKey | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
        return None if row is None else _key(row)

    def revoke_key(self, key_id: str) -> None:
        """Revoke a key (idempotent); it authenticates no one from now on."""
        with self.engine.begin() as conn:
            found = conn.execute(api_keys.update().where(api_keys.c.id == key_id)
                                 .values(revoked=sa.func.coalesce(api_keys.c.revoked, self.clock()))).rowcount
        if not found:
            raise AccessError(f"no API key {key_id!r}")

    def authenticate(self, token: str) -> User | None:
        """The user ``token`` belongs to, or None (malformed, unknown, wrong, revoked, expired,
        or its user disabled). Never says which, so a guess learns nothing."""
        if not token.startswith(KEY_PREFIX):
            return None
        key_id, _, secret = token[len(KEY_PREFIX):].partition("_")
        if not key_id or not secret:
            return None
        now = self.clock()
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(api_keys, users.c.admin, users.c.disabled, users.c.created.label("user_created"))
                .join(users, users.c.name == api_keys.c.user).where(api_keys.c.id == key_id)).mappings().first()
        if row is None or not hmac.compare_digest(row["digest"], _digest(secret)):
            return None
        if not _key(row).usable(now) or row["disabled"]:
            return None
        if row["last_used"] is None or now - row["last_used"] > self.LAST_USED_EVERY_S:
            with self.engine.begin() as conn:
                conn.execute(api_keys.update().where(api_keys.c.id == key_id).values(last_used=now))
        return User(row["user"], bool(row["admin"]), False, row["user_created"])

    # -- projects and roles ------------------------------------------------------------------

    def create_project(self, name: str, description: str = "",
                       domains: tuple[str, ...] | list[str] = DEFAULT_DOMAINS) -> Project:
        check_name("a project", name)
        domains = tuple(check_name("a domain", d) for d in domains)
        if not domains or len(set(domains)) != len(domains):
            raise InputError(f"project {name!r} needs one or more distinct domains, not {list(domains)}")
        now = self.clock()
        with self.engine.begin() as conn:
            created = conn.execute(self._insert(projects).values(
                name=name, description=description, domains=json.dumps(list(domains)), created=now)
                .on_conflict_do_nothing(index_elements=["name"])).rowcount
        if not created:
            raise AccessError(f"project {name!r} exists already")
        return Project(name, description, domains, now)

    def project(self, name: str) -> Project | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(projects).where(projects.c.name == name)).mappings().first()
        return None if row is None else _project(row)

    def projects(self, user: User) -> list[Project]:
        """The projects ``user`` has a role in (every project for a server admin)."""
        query = sa.select(projects).order_by(projects.c.name)
        if not user.admin:
            query = query.join(members, members.c.project == projects.c.name).where(members.c.user == user.name)
        with self.engine.connect() as conn:
            return [_project(r) for r in conn.execute(query).mappings()]

    def role(self, user: User, project: str) -> str | None:
        """``user``'s role in ``project``: None when it has none (or the project does not exist)."""
        with self.engine.connect() as conn:
            if user.admin:
                exists = conn.execute(sa.select(projects.c.name).where(projects.c.name == project)).first()
                return "admin" if exists else None
            return conn.execute(sa.select(members.c.role).where(
                members.c.project == project, members.c.user == user.name)).scalar()

    def set_role(self, project: str, user: str, role: str) -> None:
        """Give ``user`` ``role`` in ``project`` (replacing the role it had)."""
        check_role(role)
        if self.project(project) is None:
            raise AccessError(f"no project {project!r}")
        if self.user(user) is None:
            raise AccessError(f"no user {user!r}: create the user first")
        with self.engine.begin() as conn:
            conn.execute(members.delete().where(members.c.project == project, members.c.user == user))
            conn.execute(members.insert().values(project=project, user=user, role=role))

    def remove_member(self, project: str, user: str) -> None:
        with self.engine.begin() as conn:
            if not conn.execute(members.delete().where(members.c.project == project,
                                                       members.c.user == user)).rowcount:
                raise AccessError(f"user {user!r} has no role in project {project!r}")

    def members(self, project: str) -> dict[str, str]:
        """Each member of ``project`` and its role."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(members.c.user, members.c.role)
                                .where(members.c.project == project).order_by(members.c.user)).all()
        return {user: role for user, role in rows}

    # -- the first start ---------------------------------------------------------------------

    def bootstrap(self, admin: str = "admin", project: str = "default",
                  description: str = "made at the server's first start") -> str | None:
        """On a server's first start (no admin user yet): make the admin user, a first project
        and a key for the admin; returns that key (to show once), or None when there was an admin.
        ``description``: how the key and the project were made (what their descriptions say)."""
        with self.engine.connect() as conn:
            if conn.execute(sa.select(users.c.name).where(users.c.admin == sa.true()).limit(1)).first():
                return None
        try:
            self.create_user(admin, admin=True)
        except AccessError:  # another server process made it at the same moment
            return None
        if self.project(project) is None:
            try:
                self.create_project(project, f"The first project, {description}.")
            except AccessError:
                pass
        return self.create_key(admin, description=description)[1]


def _key(row: sa.RowMapping) -> ApiKey:
    return ApiKey(row["id"], row["user"], row["description"], row["created"], row["expires"], row["revoked"],
                  row["last_used"])


def _project(row: sa.RowMapping) -> Project:
    return Project(row["name"], row["description"], tuple(json.loads(row["domains"])), row["created"])
