"""plait-bigquery: a BigQuery query as a typed plait task.

    from plait_bigquery import bigquery_task

    daily = bigquery_task(
        "daily", "SELECT region, SUM(amount) AS total FROM {{inputs.orders}} "
                 "WHERE day >= {{inputs.since}} GROUP BY region",
        inputs={"orders": pd.DataFrame, "since": datetime.date}, outputs={"totals": pd.DataFrame},
        project="my-project", dataset="scratch")

``{{inputs.x}}`` binds a query parameter (a data frame is loaded into a table, a
``plait_sql.Table`` is named); ``connection="local"`` or ``PLAIT_OFFLINE=1`` runs the query on
the embedded DuckDB warehouse instead of BigQuery.
"""

from __future__ import annotations

from typing import Any

from plait import Task, external_task
from plait_sql import Table

from plait_bigquery.config import BigQuery

__all__ = ["BigQuery", "Table", "bigquery_task"]


def bigquery_task(name: str, query: str, *, inputs: dict[str, Any] | None = None,
                  outputs: dict[str, Any] | None = None, connection: str | None = None,
                  project: str | None = None, location: str | None = None, dataset: str | None = None,
                  destination: str | None = None, api_endpoint: str | None = None,
                  credentials_secret: str | None = None, labels: dict[str, str] | None = None,
                  maximum_bytes_billed: int | None = None, **options: Any) -> Task[Any]:
    """A task that runs ``query`` on BigQuery; ``options`` are :func:`plait.task`'s."""
    config = BigQuery(query=query, connection=connection, project=project, location=location, dataset=dataset,
                      destination=destination, api_endpoint=api_endpoint, credentials_secret=credentials_secret,
                      labels=labels or {}, maximum_bytes_billed=maximum_bytes_billed)
    if credentials_secret:
        options["secrets"] = sorted({*options.get("secrets", ()), credentials_secret})
    return external_task(name, config, inputs=inputs, outputs=outputs, **options)
