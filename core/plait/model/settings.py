"""Where plait keeps its state, from the environment (or the defaults of a laptop).

``PLAIT_HOME`` (default ``./.plait``) holds the SQLite event store, the local blob store
and attempt working folders; ``PLAIT_DB_URL`` and ``PLAIT_BLOB_URL`` point the store and the
blobs elsewhere (PostgreSQL, ``s3://...``); ``PLAIT_WORKERS`` sets the local worker pool.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    db_url: str
    blob_url: str
    workers: int

    def secret(self, name: str) -> str | None:
        """A secret's value: ``PLAIT_SECRET_<NAME>`` in the environment, else ``<home>/secrets/<name>``."""
        key = "PLAIT_SECRET_" + "".join(c if c.isalnum() else "_" for c in name).upper()
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
        )


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)

