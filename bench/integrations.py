"""Tasks the integration benchmarks run (a module, so Spark and torch processes import it)."""

from __future__ import annotations

import plait
import torch
import torch.distributed as dist
from plait import current_context
from plait_pytorch import PyTorch
from plait_spark import Spark


@plait.task(plugin=Spark(executor_instances=2))
def spark_count(rows: int) -> int:
    return current_context().spark.range(rows).count()


@plait.workflow
def spark_job(rows: int = 1000) -> int:
    return spark_count(rows=rows)


@plait.task(plugin=PyTorch(nproc_per_node=2))
def ddp_step(size: int) -> float:
    t = torch.ones(size)
    dist.all_reduce(t)
    return float(t.sum().item())


@plait.workflow
def ddp_job(size: int = 1000) -> float:
    return ddp_step(size=size)
