"""The local warehouse: where its file lives, and a table's project dropped locally (README claims)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import plait
import pytest
from plait import Phase
from plait_bigquery import Table, bigquery_task

write_sales = bigquery_task("write_sales", "SELECT {{inputs.i}} * 3 AS v", inputs={"i": int},
                            outputs={"t": Table}, destination="proj.sales.results", connection="local")


read_sales = bigquery_task("read_sales", "SELECT v + {{inputs.k}} AS w FROM proj.sales.results", inputs={"k": int},
                           outputs={"w": int}, connection="local")


@plait.workflow
def sales(i: int) -> Table:
    return write_sales(i=i)


@plait.workflow
def read_back(k: int) -> int:
    return read_sales(k=k)


def _stored(warehouse: Path) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute("SELECT v FROM sales.results").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("configured", [False, True], ids=["PLAIT_HOME", "PLAIT_WAREHOUSE"])
def test_the_warehouse_file_and_a_table_named_without_its_project(configured, plait_home, tmp_path, monkeypatch):
    warehouse = tmp_path / "elsewhere.duckdb" if configured else plait_home / "warehouse.duckdb"
    if configured:
        monkeypatch.setenv("PLAIT_WAREHOUSE", str(warehouse))
    execution = plait.run(sales, {"i": 2})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert _stored(warehouse) == [(6,)]  # proj.sales.results is sales.results locally
    assert configured != (plait_home / "warehouse.duckdb").exists()
    assert plait.run(read_back, {"k": 1}).outputs == {"o0": 7}  # a query naming proj.sales.results reads it
