"""Workflows for the plait-sql tests (local mode, through the BigQuery task type)."""

from __future__ import annotations

import plait
from plait_bigquery import Table, bigquery_task


@plait.task
def upto(n: int) -> list[int]:
    return list(range(n))


square = bigquery_task("square", "SELECT {{inputs.i}} * {{inputs.i}} AS sq", inputs={"i": int},
                       outputs={"table": Table}, connection="local")
read = bigquery_task("read", "SELECT sq FROM {{inputs.table}}", inputs={"table": Table}, outputs={"sq": int},
                     connection="local")


@plait.workflow
def squares(n: int) -> list[int]:
    return plait.map(read, over=plait.map(square, over=upto(n=n)))
