"""The PyTorch task the integration benchmark runs (imports only what a torch task needs)."""

from __future__ import annotations

import plait
import torch
import torch.distributed as dist
from plait_pytorch import PyTorch


@plait.task(plugin=PyTorch(nproc_per_node=2))
def ddp_step(size: int) -> float:
    t = torch.ones(size)
    dist.all_reduce(t)
    return float(t.sum().item())


@plait.workflow
def ddp_job(size: int = 1000) -> float:
    return ddp_step(size=size)
