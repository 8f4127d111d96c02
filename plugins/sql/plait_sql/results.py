"""A query's result as the task's outputs.

The outputs' types say what the task returns:

- one data-frame output: the whole result, stored as Parquet in the blob store;
- one :class:`plait_sql.Table` output: the result written to a table, and its name;
- scalar outputs: the columns of a result of exactly one row, by name (any case);
- no outputs: the statement runs for its effect.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from plait import CompileError
from plait.sdk import TaskTemplate

from plait_sql.template import SCALARS, TABLE_REF


def output_kinds(task: TaskTemplate) -> dict[str, str]:
    """Each output's kind (``dataframe``, ``table`` or a scalar's); rejects what a query cannot give."""
    outputs = {name: (s.args[0] if s.kind == "optional" else s) for name, s in task.interface.outputs.items()}
    if len(outputs) == 1:
        ((name, spec),) = outputs.items()
        if spec.kind == "dataframe":
            return {name: "dataframe"}
        if spec.kind == "struct" and spec.ref == TABLE_REF:
            return {name: "table"}
    bad = {n: task.interface.outputs[n].describe() for n, s in outputs.items() if s.kind not in SCALARS}
    if bad:
        raise CompileError(
            f"query task {task.name!r}: outputs {bad} cannot come from a query; a query returns one "
            "data frame, one plait_sql.Table, or scalar outputs read from a single row")
    return {name: spec.kind for name, spec in outputs.items()}


def outputs_of(kinds: dict[str, str], result: Any, blobs: Any, table: dict[str, str] | None = None) -> dict[str, Any]:
    """Turn a result (a ``pyarrow.Table``) into output literals; ``table`` for a Table output."""
    if not kinds:
        return {}
    name, kind = next(iter(kinds.items()))
    if kind == "table":
        assert table is not None
        return {name: table}
    if kind == "dataframe":
        import pyarrow.parquet as pq

        sink = io.BytesIO()
        pq.write_table(result, sink)
        return {name: {"uri": blobs.put_bytes(sink.getvalue(), ".parquet"), "format": "parquet",
                       "rows": result.num_rows}}
    if result is None or result.num_rows != 1:
        rows = 0 if result is None else result.num_rows
        raise ValueError(f"the query returned {rows} rows; scalar outputs ({', '.join(kinds)}) need exactly one")
    row = {column.lower(): value for column, value in result.to_pylist()[0].items()}
    literals = {}
    for out, kind in kinds.items():
        if out.lower() not in row:
            raise ValueError(f"the query's result has no column {out!r} for output {out!r} "
                             f"(columns: {', '.join(result.column_names)})")
        literals[out] = _literal(row[out.lower()], kind)
    return literals


def _literal(value: Any, kind: str) -> Any:
    """A warehouse value (Decimal, datetime, ...) as the literal of a ``kind`` output."""
    if value is None:
        return None
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "bool":
        return bool(value)
    if kind == "date" and isinstance(value, dt.datetime):
        return value.date().isoformat()
    if kind in ("date", "datetime"):
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    return str(value)


def column_type(arrow: Any, names: dict[str, str]) -> str:
    """A warehouse's column type for a Parquet (Arrow) column: ``names`` maps the kinds ``bool``,
    ``int``, ``float``, ``date``, ``timestamp``, ``timestamp_tz``, ``binary`` and ``string`` (the
    fallback) to the warehouse's type names. Used to create the table a frame input is loaded into."""
    import pyarrow as pa

    checks = (("bool", pa.types.is_boolean), ("int", pa.types.is_integer), ("float", pa.types.is_floating),
              ("decimal", pa.types.is_decimal), ("date", pa.types.is_date),
              ("timestamp_tz", lambda t: pa.types.is_timestamp(t) and t.tz is not None),
              ("timestamp", pa.types.is_timestamp),
              ("binary", lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t)))
    for kind, matches in checks:
        if matches(arrow) and kind in names:
            return names[kind]
    return names["string"]
