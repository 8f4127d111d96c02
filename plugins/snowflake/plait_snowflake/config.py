"""Configuration of a Snowflake query task."""

from __future__ import annotations

from plait_sql.task import QueryConfig


class Snowflake(QueryConfig):
    """Run ``query`` (Snowflake SQL) as an asynchronous Snowflake query.

    ``connection`` names a connection in ``~/.snowflake/connections.toml`` (``"local"`` runs on
    the embedded DuckDB warehouse instead); or give ``account`` and ``user`` here, with the
    password in the plait secret named by ``password_secret``. ``host``, ``port`` and
    ``protocol`` reach another endpoint than ``<account>.snowflakecomputing.com``.
    """

    task_type = "snowflake"

    account: str | None = None
    user: str | None = None
    password_secret: str | None = None
    database: str | None = None
    db_schema: str | None = None
    warehouse: str | None = None
    role: str | None = None
    host: str | None = None
    port: int | None = None
    protocol: str | None = None
