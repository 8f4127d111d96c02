"""What a local-mode SQL task costs over the same query on bare DuckDB.

    .venv/bin/python bench/sql_tasks.py

(1) An aggregation over a data frame of 1,000,000 rows: bare DuckDB (the frame registered, the
query run, the result as Arrow) against a plait workflow whose Snowflake task runs the same
query in local mode (the frame read from the blob store as Parquet, sqlglot's translation,
the result written back as Parquet). (2) A map of 500 trivial queries: time per query.
Best of 3 runs each, inline (no worker pool), on one fresh plait home.
"""

from __future__ import annotations

import time

import duckdb
import plait
import sql_flows
from common import fresh_home, machine, table
from plait.engine.execution import RunOptions

ROWS = 1_000_000
BARE = ("SELECT ROUND(x, 2) AS bucket, AVG(y) AS y, COUNT(*) AS n FROM readings "
        "WHERE ABS(y) < $limit GROUP BY ROUND(x, 2) ORDER BY bucket")


def best(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    fresh_home()
    frame = sql_flows.readings.fn(rows=ROWS)

    def bare() -> None:
        con = duckdb.connect()
        con.register("readings", frame)
        assert con.execute(BARE, {"limit": 100.0}).to_arrow_table().num_rows == 201
        con.close()

    def through_plait() -> None:
        execution = plait.run(sql_flows.aggregate_readings, {"frame": frame}, options=RunOptions(inline=True))
        assert execution.phase.value == "succeeded", execution.error
        assert len(execution.outputs["o0"]) == 201

    def many() -> None:
        execution = plait.run(sql_flows.many_queries, {"n": 500}, options=RunOptions(inline=True))
        assert execution.outputs["o0"] == list(range(1, 501)), execution.error

    rows = []
    for _ in range(1):
        b, p = best(bare), best(through_plait)
        rows.append(["aggregate 1M rows", f"{b:.3f} s", f"{p:.3f} s", f"{p / b:.2f}x"])
    per = best(many) / 500
    print(f"machine: {machine()}")
    print(table(["workload", "bare DuckDB", "plait local mode", "ratio"], rows))
    print(f"map of 500 trivial local queries: {per * 1e3:.2f} ms per query (includes encoding the input "
          "and writing the output event)")


if __name__ == "__main__":
    main()
