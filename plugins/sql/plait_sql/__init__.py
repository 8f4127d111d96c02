"""plait-sql: what the SQL task types (plait-bigquery, plait-snowflake) share.

- :mod:`plait_sql.template`: a query is a template over the task's typed inputs;
  ``{{inputs.x}}`` becomes a bound query parameter (never text spliced into the SQL), a
  data-frame input a table loaded for the query, a :class:`Table` input its name.
- :mod:`plait_sql.results`: a result becomes the task's outputs: a data frame, a
  :class:`Table`, or the columns of a single row.
- :mod:`plait_sql.local`: the embedded DuckDB warehouse that runs BigQuery or Snowflake SQL,
  translated by sqlglot, for offline work (``connection="local"`` or ``PLAIT_OFFLINE=1``).
- :class:`plait_sql.task.QueryTask`: the task-type base both plugins subclass.

This distribution registers no task type of its own.
"""

from plait_sql.table import Table

__all__ = ["Table"]
