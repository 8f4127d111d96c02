"""plait-pytorch: distributed PyTorch training as a plait task.

    from plait_pytorch import PyTorch

    @plait.task(plugin=PyTorch(workers=1, nproc_per_node=2), retries=2)
    def train(epochs: int) -> torch.nn.Module:
        ctx = plait.current_context()      # ctx.rank, ctx.local_rank, ctx.world_size
        ...

Every rank runs the function; rank 0's return value is the task's output. On the local
platform the ranks run under ``torch.distributed.run`` (gloo without a GPU, NCCL with one).
"""

from plait_pytorch.config import Elastic, PyTorch

__all__ = ["Elastic", "PyTorch"]
