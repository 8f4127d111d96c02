"""One workflow, four engines: Spark prepares data, SQL cleans it, PyTorch trains, a notebook reports.

    plait run examples/mix.py:train_and_report --rows 20000 --epochs 5

Spark simulates sensor readings of y = 3x + 1, noisy and with a few glitches; a Snowflake
query drops the glitches and averages the readings into buckets of x; two PyTorch processes
fit a linear model to the buckets with DistributedDataParallel (gloo on CPU); a Python task
scores the model on held-out buckets; a Jupyter notebook, run by papermill, reports on it and
keeps an HTML rendering.

The query runs on the embedded DuckDB warehouse unless PLAIT_SNOWFLAKE_CONNECTION names a
connection in ~/.snowflake/connections.toml: the same workflow then runs it on Snowflake.
Needs plait-spark, plait-snowflake, plait-pytorch and plait-papermill (all installed by `make`).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import plait
import torch
from plait import current_context
from plait_papermill import notebook_task
from plait_pytorch import PyTorch
from plait_snowflake import snowflake_task
from plait_spark import Spark
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


@plait.task(plugin=Spark(executor_instances=2), cache=True, cache_version="1")
def make_dataset(rows: int, seed: int = 7) -> DataFrame:
    """Readings of y = 3x + 1 with noise, x in [-1, 1]; about 1% are glitches of 1000."""
    spark = current_context().spark
    return (spark.range(rows)
            .withColumn("x", F.rand(seed) * 2 - 1)
            .withColumn("y", F.when(F.rand(seed + 3) < 0.01, F.lit(1000.0))
                        .otherwise(F.col("x") * 3 + 1 + F.randn(seed + 1) * 0.1))
            .drop("id"))


# Snowflake SQL; {{inputs.x}} are bound as parameters. Every tenth bucket is held out.
clean = snowflake_task(
    "clean-readings",
    """
    WITH kept AS (
        SELECT ROUND(x, 2) AS bucket, y FROM {{inputs.readings}} WHERE ABS(y) < {{inputs.glitch_above}}
    )
    SELECT bucket AS "x", AVG(y) AS "y", COUNT(*) AS "readings",
           IFF(MOD(ROUND(bucket * 100), 10) = 0, 'test', 'train') AS "split"
    FROM kept
    GROUP BY bucket
    HAVING COUNT(*) >= {{inputs.min_readings}}
    ORDER BY bucket
    """,
    inputs={"readings": pd.DataFrame, "glitch_above": float, "min_readings": int},
    outputs={"buckets": pd.DataFrame},
    connection=os.environ.get("PLAIT_SNOWFLAKE_CONNECTION", "local"),
)


@plait.task(plugin=PyTorch(nproc_per_node=2), retries=2)
def fit(data: pd.DataFrame, epochs: int) -> torch.nn.Module:
    """Fit y = ax + b with DDP; each rank takes every other bucket; checkpoints every epoch."""
    ctx = current_context()
    train = data[data["split"] == "train"].iloc[ctx.rank::ctx.world_size]
    x = torch.tensor(train["x"].values, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(train["y"].values, dtype=torch.float32).unsqueeze(1)
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.2)
    start = 0
    if (saved := ctx.checkpoint.restore()) is not None:
        state = torch.load(io.BytesIO(saved), weights_only=True)
        model.load_state_dict(state["model"])
        start = state["epoch"]
    for epoch in range(start, epochs):
        for batch in torch.split(torch.randperm(len(x)), 16):
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(ddp(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
        if ctx.rank == 0:
            print(f"epoch {epoch}: loss {loss.item():.5f}")
            buffer = io.BytesIO()
            torch.save({"model": model.state_dict(), "epoch": epoch + 1}, buffer)
            ctx.checkpoint.save(buffer.getvalue())
    return model


class Scores(NamedTuple):
    predictions: pd.DataFrame
    slope: float
    intercept: float


@plait.task
def score(model: torch.nn.Module, data: pd.DataFrame) -> Scores:
    """The model's predictions on the held-out buckets, and its parameters."""
    test = data[data["split"] == "test"].reset_index(drop=True)
    with torch.no_grad():
        predicted = model(torch.tensor(test["x"].values, dtype=torch.float32).unsqueeze(1)).squeeze(1)
    out = test.assign(prediction=predicted.numpy())
    return Scores(out, float(model.weight.item()), float(model.bias.item()))


report = notebook_task(
    "model-report", Path(__file__).parent / "notebooks" / "report.ipynb",
    inputs={"predictions": pd.DataFrame, "slope": float, "intercept": float},
    outputs={"mae": float, "summary": str},
)


class Result(NamedTuple):
    summary: str
    mae: float


@plait.workflow
def train_and_report(rows: int = 20000, epochs: int = 5) -> Result:
    data = clean(readings=make_dataset(rows=rows), glitch_above=100.0, min_readings=2)
    model = fit(data=data, epochs=epochs)
    scores = score(model=model, data=data)
    out = report(predictions=scores.predictions, slope=scores.slope, intercept=scores.intercept)
    return out.summary, out.mae
