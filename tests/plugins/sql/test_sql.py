"""plait-sql: templates, results and the local warehouse, shared by the SQL task types."""

from __future__ import annotations

import datetime as dt

import plait
import pyarrow as pa
import pytest
from plait import Phase
from plait_bigquery import bigquery_task
from plait_sql import Table
from plait_sql.results import outputs_of
from plait_sql.template import render
from sqlflows import squares


def _template(query: str, inputs: dict, outputs: dict | None = None):
    return bigquery_task("t", query, inputs=inputs, outputs=outputs or {"x": int}, connection="local").template


def test_scalars_become_markers_frames_tables_and_tables_their_names():
    import pandas as pd

    task = _template("SELECT * FROM {{inputs.t}} JOIN {{inputs.f}} WHERE d = {{ inputs.d }} AND s = {{inputs.s}}",
                     {"t": Table, "f": pd.DataFrame, "d": dt.date, "s": str})
    rendered = render(task, "SELECT * FROM {{inputs.t}} JOIN {{inputs.f}} WHERE d = {{ inputs.d }} AND s = {{inputs.s}}",
                      {"t": {"name": "p.sales.orders", "connection": ""}, "f": {"uri": "x"}, "d": "2026-01-02",
                       "s": "it's"},
                      placeholder=lambda p, i: f"@{p.name}", frame_table=lambda n: f"scratch_{n}",
                      table_name=lambda t: f"`{t.name}`")
    assert rendered.sql == "SELECT * FROM `p.sales.orders` JOIN scratch_f WHERE d = @d AND s = @s"
    assert [(p.name, p.kind, p.value) for p in rendered.parameters] == [("d", "date", dt.date(2026, 1, 2)),
                                                                        ("s", "str", "it's")]


def test_a_table_name_that_is_not_plain_identifiers_is_refused():
    task = _template("SELECT * FROM {{inputs.t}}", {"t": Table})
    with pytest.raises(ValueError, match="is not a table name"):
        render(task, "SELECT * FROM {{inputs.t}}", {"t": {"name": "t; DROP TABLE x", "connection": ""}},
               placeholder=lambda p, i: "?", frame_table=str, table_name=lambda t: t.name)


def test_scalar_outputs_need_exactly_one_row_and_their_columns():
    two = pa.table({"x": [1, 2]})
    with pytest.raises(ValueError, match="returned 2 rows"):
        outputs_of({"x": "int"}, two, blobs=None)
    with pytest.raises(ValueError, match="no column 'y'"):
        outputs_of({"y": "int"}, pa.table({"x": [1]}), blobs=None)
    assert outputs_of({"X": "float", "when": "date"}, pa.table({"x": [2], "WHEN": [dt.date(2026, 1, 2)]}),
                      blobs=None) == {"X": 2.0, "when": "2026-01-02"}


def test_local_queries_run_concurrently_and_write_tables_the_next_queries_read():
    execution = plait.run(squares, {"n": 8})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"o0": [i * i for i in range(8)]}
