"""The Spark task the integration benchmark runs (imports only what a Spark task needs)."""

from __future__ import annotations

import plait
from plait import current_context
from plait_spark import Spark


@plait.task(plugin=Spark(executor_instances=2))
def spark_count(rows: int) -> int:
    return current_context().spark.range(rows).count()


@plait.workflow
def spark_job(rows: int = 1000) -> int:
    return spark_count(rows=rows)
