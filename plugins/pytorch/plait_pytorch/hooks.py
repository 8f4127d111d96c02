"""The ``pytorch`` task type and the torch value types, registered through plait's hooks."""

from __future__ import annotations

import io
import json
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plait import AttemptContext, Status, TaskType, hookimpl
from plait.sdk import (
    Codec,
    Handle,
    ProcessTask,
    TaskTemplate,
    TypeEngine,
    TypeMismatchError,
    TypeSpec,
    TypeTransformer,
    ValueIO,
    attempt_payload,
    status_of,
)

from plait_pytorch.config import PyTorch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PyTorchTask(ProcessTask):
    """Runs the task's function on every rank under ``torch.distributed.run``."""

    name = "pytorch"
    config_model = PyTorch

    def job(self, ctx: AttemptContext, task: TaskTemplate, folder: Path) -> dict[str, Any]:
        return {"backend": PyTorch.model_validate(task.config).backend, "payload": attempt_payload(ctx, task)}

    def command(self, ctx: AttemptContext, task: TaskTemplate, job: Path) -> list[str]:
        config = PyTorch.model_validate(task.config)
        nproc = config.nproc_per_node * (config.workers if config.elastic is None else 1)
        argv = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}",
                f"--log-dir={job.parent / 'ranks'}", "--tee=3"]
        if config.elastic is None:
            argv += ["--nnodes=1"]
        else:
            e = config.elastic
            argv += [f"--nnodes={e.min_nodes}:{e.max_nodes}", f"--max-restarts={e.max_restarts}"]
        backend = config.elastic.rdzv_backend if config.elastic else "c10d"
        return [*argv, f"--rdzv-backend={backend}", f"--rdzv-endpoint=127.0.0.1:{_free_port()}",
                "-m", "plait_pytorch.rank", str(job)]

    def environment(self, ctx: AttemptContext, task: TaskTemplate) -> dict[str, str]:
        return {**task.env, "OMP_NUM_THREADS": "1"}

    def failure(self, ctx: AttemptContext, handle: Handle, code: int) -> Status:
        errors = sorted(Path(handle["job"]).glob("error-*.json"))
        if not errors:
            return super().failure(ctx, handle, code)
        first = json.loads(errors[0].read_text())
        status = status_of(first)
        return Status(status.phase, f"rank {first['rank']} failed: {status.message}", status.outputs,
                      status.retryable, status.error_kind)


class TorchValues(TypeTransformer):
    """Tensors and modules, stored with ``torch.save`` in the blob store."""

    name = "torch"
    kinds = ("torch.tensor", "torch.module")

    def matches(self, tp: Any) -> bool:
        module = getattr(tp, "__module__", "") or ""
        if not module.startswith("torch"):
            return False
        import torch

        return isinstance(tp, type) and (issubclass(tp, torch.Tensor) or issubclass(tp, torch.nn.Module))

    def spec(self, tp: Any, engine: TypeEngine) -> TypeSpec:
        import torch

        return TypeSpec(kind="torch.tensor" if issubclass(tp, torch.Tensor) else "torch.module")

    def codec(self, tp: Any, engine: TypeEngine, vio: ValueIO) -> Codec:
        import torch

        def encode(value: Any) -> dict[str, str]:
            if not isinstance(value, tp):
                raise TypeMismatchError(f"expected {tp.__name__}, got {type(value).__name__}")
            if isinstance(value, torch.Tensor):
                value = value.detach().cpu()
            elif isinstance(value, torch.nn.Module):
                value = value.cpu()
            buffer = io.BytesIO()
            torch.save(value, buffer)
            return {"uri": vio.require_blobs().put_bytes(buffer.getvalue(), ".pt")}

        def decode(literal: dict[str, str]) -> Any:
            data = io.BytesIO(vio.require_blobs().read_bytes(literal["uri"]))
            return torch.load(data, weights_only=issubclass(tp, torch.Tensor))

        return encode, decode

    def castable(self, src: TypeSpec, dst: TypeSpec, engine: TypeEngine) -> bool:
        return src.kind == dst.kind


@hookimpl
def plait_task_types(register: Callable[[TaskType], None]) -> None:
    register(PyTorchTask())


@hookimpl
def plait_types(register: Callable[[TypeTransformer], None]) -> None:
    register(TorchValues())
