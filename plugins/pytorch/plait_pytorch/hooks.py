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
    ObjectKind,
    ObjectRequest,
    ObjectState,
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


PYTORCH_JOB = ObjectKind(group="kubeflow.org", version="v1", plural="pytorchjobs", kind="PyTorchJob")
MASTER_PORT = 23456


class PyTorchTask(ProcessTask):
    """Runs the task's function on every rank under ``torch.distributed.run``; on Kubernetes,
    as a PyTorchJob of Kubeflow's training operator (one pod per node)."""

    name = "pytorch"
    config_model = PyTorch
    kubernetes_kind = PYTORCH_JOB

    def kubernetes_object(self, ctx: AttemptContext, task: TaskTemplate, request: ObjectRequest) -> dict[str, Any]:
        config = PyTorch.model_validate(task.config)

        def replica(count: int, port: bool) -> dict[str, Any]:
            container: dict[str, Any] = {
                "name": "pytorch", "image": request.image,
                # torchrun takes nodes, node rank, processes per node and the master from the
                # PET_* variables the operator sets; each rank runs plait's rank entrypoint.
                "command": [request.python, "-m", "torch.distributed.run", "-m", "plait_pytorch.rank",
                            request.job_uri],
                "env": [*request.env, {"name": "OMP_NUM_THREADS", "value": "1"}],
                "resources": request.resources,
            }
            if request.env_from:
                container["envFrom"] = request.env_from
            if port:
                container["ports"] = [{"name": "pytorchjob-port", "containerPort": MASTER_PORT}]
            spec: dict[str, Any] = {"containers": [container]}
            for key, value in (("serviceAccountName", request.service_account), ("nodeSelector", request.node_selector),
                               ("tolerations", request.tolerations),
                               ("imagePullSecrets", [{"name": s} for s in request.image_pull_secrets])):
                if value:
                    spec[key] = value
            return {"replicas": count, "restartPolicy": "Never",
                    "template": {"metadata": {"labels": dict(request.labels)}, "spec": spec}}

        spec: dict[str, Any] = {"nprocPerNode": str(config.nproc_per_node),
                                "runPolicy": {"cleanPodPolicy": "None"}}
        if config.elastic is None:
            replicas = {"Master": replica(1, port=True)}
            if config.workers > 1:
                replicas["Worker"] = replica(config.workers - 1, port=False)
        else:
            e = config.elastic
            replicas = {"Worker": replica(e.max_nodes, port=True)}
            spec["elasticPolicy"] = {"rdzvBackend": e.rdzv_backend, "minReplicas": e.min_nodes,
                                     "maxReplicas": e.max_nodes, "maxRestarts": e.max_restarts}
        spec["pytorchReplicaSpecs"] = replicas
        return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "spec": spec}

    def kubernetes_state(self, obj: dict[str, Any]) -> ObjectState:
        name = obj["metadata"]["name"]
        replicas = (obj.get("spec") or {}).get("pytorchReplicaSpecs") or {}
        first = f"{name}-master-0" if "Master" in replicas else f"{name}-worker-0"
        where = {"log_pod": first, "log_container": "pytorch"}
        conditions = [c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("status") == "True"]
        latest = conditions[-1] if conditions else {}
        kind = latest.get("type")
        if kind == "Succeeded":
            return ObjectState("succeeded", latest.get("message") or "", **where)
        if kind == "Failed":
            return ObjectState("failed", f"{latest.get('reason') or 'Failed'}: {latest.get('message') or ''}", **where)
        return ObjectState("running", kind or "Created", **where)

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

    def log_links(self, ctx: AttemptContext, handle: Handle) -> dict[str, str]:
        """Every rank's stdout and stderr that holds anything, as ``rank0.stdout``,
        ``rank1.stderr`` (``restart1.rank0.stdout`` after an elastic restart).

        torchrun keeps each rank's output under ``--log-dir`` and tees it, prefixed, into its
        own stdout and stderr: those are what a running attempt's log shows, but once it ended
        the ranks' files are the output without the copies. torchrun's own files are the log
        only when no rank wrote one (it failed before any rank started, or they printed nothing).
        """
        found = []
        for path in (Path(handle["job"]) / "ranks").glob("*/attempt_*/*/std*.log"):
            restart, rank = path.parent.parent.name.removeprefix("attempt_"), path.parent.name
            if restart.isdigit() and rank.isdigit() and path.stat().st_size:
                found.append((int(restart), int(rank), path.stem == "stderr", path))
        links = {f"{f'restart{run}.' if run else ''}rank{number}.{path.stem}": str(path)
                 for run, number, _, path in sorted(found)}
        return links or super().log_links(ctx, handle)

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
