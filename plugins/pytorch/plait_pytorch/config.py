"""Configuration of a PyTorch task: the knobs of Kubeflow's PyTorchJob."""

from __future__ import annotations

from plait import TaskConfig
from pydantic import BaseModel, ConfigDict, model_validator


class Elastic(BaseModel):
    """Elastic training: between ``min_nodes`` and ``max_nodes`` nodes, restarted on failure."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_nodes: int = 1
    max_nodes: int = 1
    max_restarts: int = 0
    rdzv_backend: str = "c10d"

    @model_validator(mode="after")
    def _order(self) -> Elastic:
        if not 1 <= self.min_nodes <= self.max_nodes:
            raise ValueError(f"need 1 <= min_nodes <= max_nodes, got {self.min_nodes} and {self.max_nodes}")
        return self


class PyTorch(TaskConfig):
    """``workers`` nodes of ``nproc_per_node`` processes each (a PyTorchJob's worker replicas).

    On the local platform every node is this machine, so the task runs ``workers *
    nproc_per_node`` processes under ``torch.distributed.run``. ``backend`` defaults to NCCL
    when CUDA is available and gloo otherwise.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    task_type = "pytorch"

    workers: int = 1
    nproc_per_node: int = 1
    backend: str | None = None
    elastic: Elastic | None = None

    @model_validator(mode="after")
    def _positive(self) -> PyTorch:
        if self.workers < 1 or self.nproc_per_node < 1:
            raise ValueError("workers and nproc_per_node must be at least 1")
        return self

    @property
    def world_size(self) -> int:
        nodes = self.elastic.max_nodes if self.elastic else self.workers
        return nodes * self.nproc_per_node
