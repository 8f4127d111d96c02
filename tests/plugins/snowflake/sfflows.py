"""Workflows for the Snowflake tests; the query tasks are built per connection by ``flows()``."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import NamedTuple

import pandas as pd
import plait
from plait_snowflake import Table, snowflake_task


@plait.task
def orders(n: int) -> pd.DataFrame:
    regions = ["eu", "us", "ap"]
    return pd.DataFrame({"region": [regions[i % 3] for i in range(n)], "amount": [float(i) for i in range(n)],
                         "day": [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(n)]})


@plait.task
def upto(n: int) -> list[int]:
    return list(range(n))


@plait.task
def describe(totals: pd.DataFrame) -> str:
    totals.columns = [c.lower() for c in totals.columns]
    return ",".join(f"{r.region}={r.total:g}" for r in totals.sort_values("region").itertuples())


class Summary(NamedTuple):
    text: str
    rows: int
    mean: float


def flows(**connection: object) -> SimpleNamespace:
    """The tasks and workflows, with every query task pointed at ``connection``."""
    totals = snowflake_task(
        "totals", "SELECT region, SUM(amount) AS total FROM {{inputs.orders}} "
                  "WHERE day >= {{inputs.since}} GROUP BY region",
        inputs={"orders": pd.DataFrame, "since": dt.date}, outputs={"totals": pd.DataFrame}, **connection)
    keep = snowflake_task("keep", "SELECT * FROM {{inputs.orders}}", inputs={"orders": pd.DataFrame},
                          outputs={"table": Table}, **connection)
    stats = snowflake_task("stats", "SELECT COUNT(*) AS rows, AVG(amount) AS mean FROM {{inputs.table}}",
                           inputs={"table": Table}, outputs={"rows": int, "mean": float}, **connection)
    matching = snowflake_task("matching", "SELECT COUNT(*) AS n FROM {{inputs.table}} WHERE region = {{inputs.region}}",
                              inputs={"table": Table, "region": str}, outputs={"n": int}, **connection)

    @plait.workflow
    def summary(n: int, since: dt.date) -> Summary:
        frame = orders(n=n)
        s = stats(table=keep(orders=frame))
        return Summary(describe(totals=totals(orders=frame, since=since)), s.rows, s.mean)

    @plait.workflow
    def count_region(n: int, region: str) -> int:
        return matching(table=keep(orders=orders(n=n)), region=region)

    return SimpleNamespace(totals=totals, keep=keep, stats=stats, summary=summary, count_region=count_region)
