"""Spark DataFrames as plait values: Parquet in the blob store, like pandas and pyarrow frames.

A Spark task's output feeds a pandas task and back: the literal is the core's data-frame
literal (one Parquet file), so every data-frame type reads it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from plait.sdk import (
    Codec,
    PlaitError,
    TypeEngine,
    TypeMismatchError,
    TypeSpec,
    TypeTransformer,
    ValueIO,
)


def active_session() -> Any:
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is None:
        raise PlaitError("a Spark DataFrame input needs a SparkSession: use it in a Spark task "
                         "(@task(plugin=Spark(...)))")
    return spark


class SparkFrames(TypeTransformer):
    name = "spark.dataframe"
    kinds = ("dataframe",)

    def matches(self, tp: Any) -> bool:
        return (getattr(tp, "__module__", "") or "").startswith("pyspark.sql") and \
            getattr(tp, "__name__", "") == "DataFrame"

    def spec(self, tp: Any, engine: TypeEngine) -> TypeSpec:
        return TypeSpec(kind="dataframe", meta={"library": "spark"})

    def codec(self, tp: Any, engine: TypeEngine, vio: ValueIO) -> Codec:
        def encode(df: Any) -> dict[str, Any]:
            if not hasattr(df, "sparkSession"):
                raise TypeMismatchError(f"expected a Spark DataFrame, got {type(df).__name__}")
            with tempfile.TemporaryDirectory(prefix="plait-spark-") as tmp:
                out = Path(tmp) / "frame"
                df.coalesce(1).write.parquet(str(out))
                part = next(out.glob("part-*.parquet"))
                import pyarrow.parquet as pq

                rows = pq.read_metadata(part).num_rows
                uri = vio.require_blobs().put_bytes(part.read_bytes(), ".parquet")
            return {"uri": uri, "format": "parquet", "rows": rows}

        def decode(literal: dict[str, Any]) -> Any:
            spark = active_session()
            folder = Path(tempfile.mkdtemp(prefix="plait-spark-in-"))
            local = vio.require_blobs().get_file(literal["uri"], folder / "frame.parquet")
            return spark.read.parquet(str(local))

        return encode, decode

    def castable(self, src: TypeSpec, dst: TypeSpec, engine: TypeEngine) -> bool:
        return True  # every data frame reads every other: one Parquet file
