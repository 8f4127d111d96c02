"""A private database on the real PostgreSQL server (127.0.0.1:5432, user postgres, trust).

Used by the store tests that need a database of their own, created fresh and dropped after:
``with fresh_database() as url: ...`` gives a SQLAlchemy URL (``postgresql+psycopg://``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

ADMIN_URL = os.environ.get("PLAIT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


UNREACHABLE = (
    "the PostgreSQL tests need a server at {url} that lets user postgres in without a password "
    "(trust authentication on 127.0.0.1): `make services` installs and starts one on Debian "
    "(apt-get install postgresql; pg_ctlcluster --skip-systemctl-redirect <version> main start), "
    "or point PLAIT_TEST_POSTGRES_URL at another server's admin database"
)


@contextmanager
def fresh_database() -> Iterator[str]:
    """A database of its own (``postgresql+psycopg://`` URL), dropped when the block ends."""
    try:
        import psycopg
        from psycopg import sql
    except ImportError:
        pytest.fail('the PostgreSQL tests need psycopg 3: pip install "psycopg[binary]"', pytrace=False)
    admin_url = sa.engine.make_url(ADMIN_URL)
    admin_dsn = admin_url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        admin = psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        pytest.fail(f"{UNREACHABLE.format(url=ADMIN_URL)}\n({exc})", pytrace=False)
    name = f"plait_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield admin_url.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
