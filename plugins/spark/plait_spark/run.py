"""``python -m plait_spark.run JOB.json``: one Spark task attempt in its own process.

Starts a local SparkSession from the task's config, runs the task's function with the
session in ``current_context().spark``, stops the session, and writes RESULT.json.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any


def session(config: dict[str, Any], app: str) -> Any:
    """The task's SparkSession: on ``local[N]`` beside the engine; under ``spark-submit`` (a
    SparkApplication's driver) the one spark-submit configured, master and all."""
    from pyspark.sql import SparkSession

    from plait_spark.config import Spark

    spark = Spark.model_validate(config)
    if os.environ.get("PYSPARK_GATEWAY_PORT"):  # launched by spark-submit: its master, its conf
        return SparkSession.builder.appName(app).getOrCreate()
    builder = (SparkSession.builder.master(f"local[{spark.local_threads()}]").appName(app)
               .config("spark.ui.enabled", "false")
               .config("spark.driver.memory", spark.driver_memory)
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.sql.shuffle.partitions", str(max(2, spark.local_threads()))))
    if spark.jars:
        builder = builder.config("spark.jars", ",".join(spark.jars))
    if spark.py_files:
        builder = builder.config("spark.submit.pyFiles", ",".join(spark.py_files))
    for key, value in spark.spark_conf.items():
        builder = builder.config(key, value)
    for key, value in spark.hadoop_conf.items():
        builder = builder.config(f"spark.hadoop.{key}", value)
    return builder.getOrCreate()


def readable(message: str) -> str:
    """A Spark failure without the JVM's stack frames: the error and each 'Caused by'."""
    kept: list[str] = []
    for line in message.splitlines():
        stripped = line.strip()
        if stripped.startswith("at ") or stripped.startswith("... ") or not stripped:
            continue
        if line.startswith("\t") and not stripped.startswith("Caused by"):
            continue
        if stripped not in kept:
            kept.append(stripped if stripped.startswith("Caused by") else line)
    text = "\n".join(kept)
    return re.sub(r"\n{3,}", "\n\n", text)[:8000]


def main(job_path: str) -> int:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from plait.sdk import read_job, run_attempt, write_result

    job = read_job(job_path)  # before the JVM starts: it does not inherit the secrets
    workdir = job["workdir"]  # a folder here, or the blob store's (a SparkApplication's driver)
    payload = dict(job["payload"])
    spark = session(job["config"], payload["task"])
    try:
        # run_attempt runs in this process: the live session can ride in the context.
        result = run_attempt({**payload, "extras": {"spark": spark}})
    finally:
        spark.stop()
    if result["status"] == "failed":
        result["message"] = readable(result["message"])
        result["traceback"] = readable(result.get("traceback", ""))
    write_result(workdir, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
