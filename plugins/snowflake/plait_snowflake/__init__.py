"""plait-snowflake: a Snowflake query as a typed plait task.

    from plait_snowflake import snowflake_task

    daily = snowflake_task(
        "daily", "SELECT region, SUM(amount) AS total FROM {{inputs.orders}} "
                 "WHERE day >= {{inputs.since}} GROUP BY region",
        inputs={"orders": pd.DataFrame, "since": datetime.date}, outputs={"totals": pd.DataFrame},
        connection="analytics")          # a connection in ~/.snowflake/connections.toml

``{{inputs.x}}`` binds a query parameter (a data frame is loaded into a table, a
``plait_sql.Table`` is named); ``connection="local"`` or ``PLAIT_OFFLINE=1`` runs the query on
the embedded DuckDB warehouse instead of Snowflake.
"""

from __future__ import annotations

from typing import Any

from plait import Task, external_task
from plait_sql import Table

from plait_snowflake.config import Snowflake

__all__ = ["Snowflake", "Table", "snowflake_task"]


def snowflake_task(name: str, query: str, *, inputs: dict[str, Any] | None = None,
                   outputs: dict[str, Any] | None = None, connection: str | None = None,
                   account: str | None = None, user: str | None = None, password_secret: str | None = None,
                   database: str | None = None, schema: str | None = None, warehouse: str | None = None,
                   role: str | None = None, destination: str | None = None, host: str | None = None,
                   port: int | None = None, protocol: str | None = None, **options: Any) -> Task[Any]:
    """A task that runs ``query`` on Snowflake; ``options`` are :func:`plait.task`'s."""
    config = Snowflake(query=query, connection=connection, account=account, user=user,
                       password_secret=password_secret, database=database, db_schema=schema,
                       warehouse=warehouse, role=role, destination=destination, host=host, port=port,
                       protocol=protocol)
    if password_secret:
        options["secrets"] = sorted({*options.get("secrets", ()), password_secret})
    return external_task(name, config, inputs=inputs, outputs=outputs, **options)
