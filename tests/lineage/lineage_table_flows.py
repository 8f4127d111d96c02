"""A query task writing a warehouse table and another reading it (plait-bigquery's local mode)."""

from __future__ import annotations

import plait
from plait_bigquery import Table, bigquery_task

square = bigquery_task("square", "SELECT {{inputs.i}} * {{inputs.i}} AS sq", inputs={"i": int},
                       outputs={"table": Table}, connection="local")
read = bigquery_task("read", "SELECT sq FROM {{inputs.table}}", inputs={"table": Table}, outputs={"sq": int},
                     connection="local")


@plait.workflow
def table_flow(i: int) -> int:
    return read(table=square(i=i))
