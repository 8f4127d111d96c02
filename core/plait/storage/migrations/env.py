"""Alembic's entry point for plait's store; run by :mod:`plait.storage.migrations`.

It runs on the connection it is handed (``config.attributes["connection"]``), inside the
caller's transaction and lock, or, from the ``alembic`` command line, on ``-x url=...``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

import plait.storage.access  # noqa: F401  (every table plait defines is on this one metadata,
import plait.storage.entities  # noqa: F401  so that autogenerate compares them all)
import plait.storage.queue  # noqa: F401
import plait.storage.schedules  # noqa: F401
from plait.storage.events import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("give the database: alembic -x url=sqlite:///path/plait.db ...")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
else:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
