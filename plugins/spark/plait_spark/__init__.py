"""plait-spark: Spark tasks.

    from plait_spark import Spark

    @plait.task(plugin=Spark(executor_instances=2))
    def prepare(rows: int) -> pyspark.sql.DataFrame:
        spark = plait.current_context().spark       # a ready SparkSession
        return spark.range(rows)

On the local platform the task runs in its own process with a SparkSession on local[N];
Spark DataFrames travel as Parquet and interchange with pandas and pyarrow frames.
"""

from plait_spark.config import Spark

__all__ = ["Spark"]
