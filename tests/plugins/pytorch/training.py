"""Tasks and workflows for the PyTorch plugin's tests (importable by every rank)."""

from __future__ import annotations

import hashlib
import io
import os
import time

import plait
import torch
import torch.distributed as dist
from plait import current_context
from plait_pytorch import Elastic, PyTorch


@plait.task(plugin=PyTorch(nproc_per_node=2))
def whoami(tag: str) -> list[int]:
    """Each rank contributes its rank; rank 0 returns what all_gather collected."""
    ctx = current_context()
    gathered = [torch.zeros(1, dtype=torch.long) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, torch.tensor([ctx.rank]))
    return [int(t.item()) for t in gathered]


@plait.task(plugin=PyTorch(nproc_per_node=2), secrets=["torch_token"])
def token_seen(digest: str) -> list[int]:
    """1 from each rank that read the secret whose sha256 is ``digest`` (a digest: outputs are stored)."""
    ctx = current_context()
    seen = hashlib.sha256(ctx.secret("torch_token").encode()).hexdigest() == digest
    gathered = [torch.zeros(1, dtype=torch.long) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, torch.tensor([int(seen)]))
    return [int(t.item()) for t in gathered]


@plait.task(plugin=PyTorch(nproc_per_node=2))
def slow(seconds: int, marker: str) -> int:
    with open(marker, "a") as fh:
        fh.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    return 1


@plait.task(plugin=PyTorch(nproc_per_node=2))
def rank_one_fails(x: int) -> int:
    ctx = current_context()
    if ctx.rank == 1:
        raise ValueError(f"rank {ctx.rank} cannot handle {x}")
    time.sleep(60)  # rank 0 would wait forever; the failure of rank 1 must stop it
    return x


@plait.task(plugin=PyTorch(nproc_per_node=2), retries=1)
def train(epochs: int, fail_at: int, log: str) -> torch.nn.Module:
    """DDP-train a linear model to learn y = 3x; the first attempt crashes at ``fail_at``."""
    ctx = current_context()
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
    start = 0
    saved = ctx.checkpoint.restore()
    if saved is not None:
        state = torch.load(io.BytesIO(saved), weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["epoch"])
    if ctx.rank == 0:
        with open(log, "a") as fh:
            fh.write(f"attempt {ctx.attempt} starts at epoch {start}\n")
    x = torch.linspace(-1, 1, 32).unsqueeze(1)[ctx.rank::ctx.world_size]
    for epoch in range(start, epochs):
        if ctx.attempt == 1 and epoch == fail_at:
            raise RuntimeError(f"simulated crash at epoch {epoch}")
        for _ in range(50):
            optimizer.zero_grad()
            loss = ((ddp(x) - 3 * x) ** 2).mean()
            loss.backward()
            optimizer.step()
        if ctx.rank == 0:
            buffer = io.BytesIO()
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1},
                       buffer)
            ctx.checkpoint.save(buffer.getvalue())
        dist.barrier()
    return model


@plait.task
def predict(model: torch.nn.Module, x: float) -> float:
    return float(model(torch.tensor([[x]])).item())


@plait.task
def scale(t: torch.Tensor, by: float) -> torch.Tensor:
    return t * by


@plait.workflow
def fit_and_predict(epochs: int, fail_at: int, log: str) -> float:
    return predict(model=train(epochs=epochs, fail_at=fail_at, log=log), x=2.0)


@plait.workflow
def gather(tag: str) -> list[int]:
    return whoami(tag=tag)


@plait.workflow
def reads_token(digest: str) -> list[int]:
    return token_seen(digest=digest)


@plait.workflow
def failing(x: int) -> int:
    return rank_one_fails(x=x)


@plait.task(plugin=PyTorch(nproc_per_node=2, elastic=Elastic(min_nodes=1, max_nodes=1, max_restarts=1)))
def elastic_sum(x: int) -> int:
    t = torch.tensor([x + current_context().rank])
    dist.all_reduce(t)
    return int(t.item())


@plait.workflow
def elastic(x: int) -> int:
    return elastic_sum(x=x)


@plait.task(plugin=PyTorch(workers=2, nproc_per_node=1))
def across_nodes(tag: str) -> list[int]:
    """One rank per node: each contributes its rank; rank 0 returns what all_gather collected."""
    ctx = current_context()
    gathered = [torch.zeros(1, dtype=torch.long) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, torch.tensor([ctx.rank]))
    return [int(t.item()) for t in gathered]


@plait.workflow
def gather_nodes(tag: str) -> list[int]:
    return across_nodes(tag=tag)
