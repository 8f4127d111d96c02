"""Spark tasks and workflows for the plugin's tests (importable by the Spark process)."""

from __future__ import annotations

import hashlib
import os
import time

import pandas as pd
import plait
from plait import current_context
from plait_spark import Spark
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


@plait.task(plugin=Spark(executor_instances=2, spark_conf={"spark.sql.session.timeZone": "UTC"}))
def numbers(rows: int) -> DataFrame:
    spark = current_context().spark
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    return spark.range(rows).withColumn("square", F.col("id") * F.col("id"))


@plait.task
def in_pandas(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(double=df["square"] * 2)


@plait.task(plugin=Spark())
def back_in_spark(df: DataFrame) -> int:
    return int(df.agg(F.sum("double")).collect()[0][0])


@plait.task(plugin=Spark())
def count(rows: int) -> int:
    return current_context().spark.range(rows).count()


@plait.task(plugin=Spark(), secrets=["spark_token"])
def token_seen(digest: str) -> str:
    """Whether the task read the secret whose sha256 is ``digest``, and whether the JVM inherited it."""
    from plait.runtime.job import SECRETS_ENV

    ctx = current_context()
    seen = hashlib.sha256(ctx.secret("spark_token").encode()).hexdigest() == digest
    in_jvm = ctx.spark.sparkContext._jvm.java.lang.System.getenv(SECRETS_ENV) is not None
    return f"seen={seen} jvm={in_jvm}"


@plait.task(plugin=Spark())
def slow(seconds: int, marker: str) -> int:
    with open(marker, "a") as fh:
        fh.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    return 1


@plait.task(plugin=Spark())
def missing_column(rows: int) -> int:
    return current_context().spark.range(rows).select("nope").count()


@plait.task(plugin=Spark(spark_conf={"spark.sql.ansi.enabled": "true"}))
def divide_by_zero(rows: int) -> int:
    return current_context().spark.range(rows).selectExpr("id / 0 AS x").collect()[0][0]


@plait.workflow
def round_trip(rows: int) -> int:
    return back_in_spark(df=in_pandas(df=numbers(rows=rows)))


@plait.workflow
def analysis_error(rows: int) -> int:
    return missing_column(rows=rows)


@plait.workflow
def jvm_error(rows: int) -> int:
    return divide_by_zero(rows=rows)


@plait.workflow
def reads_token(digest: str) -> str:
    return token_seen(digest=digest)


@plait.task(plugin=Spark(executor_instances=64, executor_cores=4))  # 256 cores: more than any test machine
def session_settings() -> dict[str, str]:
    """What the task's real SparkSession runs with, read from inside the task."""
    sc = current_context().spark.sparkContext
    return {"master": sc.master, "parallelism": str(sc.defaultParallelism),
            "ui.enabled": str(sc.getConf().get("spark.ui.enabled")), "ui.url": str(sc.uiWebUrl),
            "SPARK_LOCAL_IP": str(os.environ.get("SPARK_LOCAL_IP"))}


@plait.workflow
def greedy() -> dict[str, str]:
    return session_settings()
