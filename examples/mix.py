"""One workflow, three engines: Spark prepares data, PyTorch trains on it, a notebook reports.

    plait run examples/mix.py:train_and_report --rows 20000 --epochs 5

Spark builds a noisy data set of y = 3x + 1; two PyTorch processes fit a linear model to it
with DistributedDataParallel (gloo on CPU); a Python task scores the model on held-out
points; a Jupyter notebook, run by papermill, reports on it and keeps an HTML rendering.
Needs plait-spark, plait-pytorch and plait-papermill (all installed by `make`).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import plait
import torch
from plait import current_context
from plait_papermill import notebook_task
from plait_pytorch import PyTorch
from plait_spark import Spark
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


@plait.task(plugin=Spark(executor_instances=2), cache=True, cache_version="1")
def make_dataset(rows: int, seed: int = 7) -> DataFrame:
    """x uniform in [-1, 1], y = 3x + 1 plus noise; a 'split' column holds 10% out."""
    spark = current_context().spark
    return (spark.range(rows)
            .withColumn("x", F.rand(seed) * 2 - 1)
            .withColumn("y", F.col("x") * 3 + 1 + F.randn(seed + 1) * 0.1)
            .withColumn("split", F.when(F.rand(seed + 2) < 0.1, "test").otherwise("train"))
            .drop("id"))


@plait.task(plugin=PyTorch(nproc_per_node=2), retries=2)
def fit(data: pd.DataFrame, epochs: int) -> torch.nn.Module:
    """Fit y = ax + b with DDP; each rank takes every other row; checkpoints every epoch."""
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
        for batch in torch.split(torch.randperm(len(x)), 256):
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
    """The model's predictions on the held-out rows, and its parameters."""
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
    data = make_dataset(rows=rows)
    model = fit(data=data, epochs=epochs)
    scores = score(model=model, data=data)
    out = report(predictions=scores.predictions, slope=scores.slope, intercept=scores.intercept)
    return out.summary, out.mae
