"""Tasks for bench/sql_tasks.py (importable by worker processes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plait
from plait_snowflake import snowflake_task

AGGREGATE = ("SELECT ROUND(x, 2) AS bucket, AVG(y) AS y, COUNT(*) AS n FROM {{inputs.readings}} "
             "WHERE ABS(y) < {{inputs.limit}} GROUP BY ROUND(x, 2) ORDER BY bucket")


@plait.task
def readings(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, rows)
    return pd.DataFrame({"x": x, "y": 3 * x + 1 + rng.normal(0, 0.1, rows)})


aggregate = snowflake_task("aggregate", AGGREGATE, inputs={"readings": pd.DataFrame, "limit": float},
                           outputs={"buckets": pd.DataFrame}, connection="local")
trivial = snowflake_task("trivial", "SELECT {{inputs.i}} + 1 AS j", inputs={"i": int}, outputs={"j": int},
                         connection="local")


@plait.workflow
def aggregate_readings(frame: pd.DataFrame, limit: float = 100.0) -> pd.DataFrame:
    return aggregate(readings=frame, limit=limit)


@plait.task
def upto(n: int) -> list[int]:
    return list(range(n))


@plait.workflow
def many_queries(n: int) -> list[int]:
    return plait.map(trivial, over=upto(n=n))
