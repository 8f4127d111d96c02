"""Where plait keeps its state, from the environment (or the defaults of a laptop).

``PLAIT_HOME`` (default ``./.plait``) holds the SQLite event store, the local blob store
and attempt working folders; ``PLAIT_DB_URL`` and ``PLAIT_BLOB_URL`` point the store and the
blobs elsewhere (PostgreSQL, ``s3://...``); ``PLAIT_WORKERS`` sets the local worker pool.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SECRET_ENV_PREFIX = "PLAIT_SECRET_"
"""Secrets given to the engine as environment variables start with this; no task's process
inherits them (each gets only the secrets its task declares)."""


def secret_env_name(name: str) -> str:
    """``api-token`` -> ``API_TOKEN``: a secret's name as an environment variable's."""
    return "".join(c if c.isalnum() else "_" for c in name).upper()


def without_secrets(env: dict[str, str]) -> dict[str, str]:
    """``env`` less the engine's ``PLAIT_SECRET_*`` variables: what a task's process may inherit."""
    return {k: v for k, v in env.items() if not k.startswith(SECRET_ENV_PREFIX)}


@dataclass(frozen=True)
class Settings:
    home: Path
    db_url: str
    blob_url: str
    workers: int
    lineage_url: str | None = None
    """An OpenLineage endpoint that every attempt's run events are forwarded to (``PLAIT_LINEAGE_URL``)."""

    def secret(self, name: str) -> str | None:
        """A secret's value: ``PLAIT_SECRET_<NAME>`` in the environment, else ``<home>/secrets/<name>``."""
        key = SECRET_ENV_PREFIX + secret_env_name(name)
        if key in os.environ:
            return os.environ[key]
        path = self.home / "secrets" / name
        return path.read_text().rstrip("\n") if path.is_file() else None

    @classmethod
    def from_env(cls, home: str | Path | None = None) -> Settings:
        root = Path(home or os.environ.get("PLAIT_HOME") or ".plait").resolve()
        root.mkdir(parents=True, exist_ok=True)
        return cls(
            home=root,
            db_url=os.environ.get("PLAIT_DB_URL") or f"sqlite:///{root / 'plait.db'}",
            blob_url=os.environ.get("PLAIT_BLOB_URL") or str(root / "blobs"),
            workers=int(os.environ.get("PLAIT_WORKERS") or default_workers()),
            lineage_url=os.environ.get("PLAIT_LINEAGE_URL") or None,
        )


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def hide_password(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part replaced by ``***``: a URL as it
    may be printed or logged (a store, a Redis token backend)."""
    import re

    return re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:***@", url)
