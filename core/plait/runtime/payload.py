"""The Python attempt payload a worker or a process runs, and its result turned into a status."""

from __future__ import annotations

import functools
from typing import Any

from plait.model.spec import PythonRef, TaskTemplate
from plait.model.status import ErrorKind, Status
from plait.model.wire import Placement
from plait.plugins.tasktype import AttemptContext


def attempt_payload(ctx: AttemptContext, task: TaskTemplate) -> dict[str, Any]:
    """What :func:`plait.worker.run_attempt` needs to run ``task`` for ``ctx``."""
    assert task.ref is not None, f"task {task.name} has no Python function to run"
    return {
        "attempt_id": ctx.attempt_id, "execution_id": ctx.execution_id, "node_id": ctx.node_id,
        "attempt": ctx.attempt, "item_index": ctx.item_index, "task": task.name,
        "ref": _ref_dict(task.ref), "inputs": ctx.inputs, "blobs": ctx.blobs.url,
        "checkpoint_uri": ctx.checkpoint_uri, "scratch_root": str(ctx.workdir),
        "dynamic": task.dynamic, "env": task.env, "secrets": ctx.secrets,
    }


@functools.lru_cache(maxsize=1024)
def _ref_dict(ref: PythonRef) -> dict[str, Any]:
    return ref.model_dump()


def status_of(result: dict[str, Any]) -> Status:
    """Turn a worker result into a task status."""
    logs = result.get("logs") or {}
    if result["status"] == "succeeded":
        outputs = result.get("outputs") or {}
        if "spec" in result:
            outputs = {"$spec": result["spec"]}
        return Status.succeeded(outputs, log_links=logs)
    message = result["message"]
    if result.get("traceback"):
        message = f"{message}\n{result['traceback']}"
    return Status.failed(message, retryable=result.get("retryable", True),
                         error_kind=ErrorKind(result.get("error_kind", "user")), log_links=logs)


def write_logs(ctx: AttemptContext, result: dict[str, Any]) -> None:
    """Keep the attempt's stdout and stderr in its working folder; note where in the result."""
    for name in ("stdout", "stderr"):
        text = result.pop(name, None)
        if text:
            path = ctx.folder / f"{name}.log"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            result.setdefault("logs", {})[name] = str(path)



def placement(ctx: AttemptContext, task: TaskTemplate | None = None, task_type: str = "python") -> Placement:
    """What a platform that places work needs to know of the attempt; the identity alone
    without ``task`` (re-attaching after a restart)."""
    extra: dict[str, Any] = {}
    if task is not None:
        extra = {"task": task.name, "image": task.image, "cpu": task.resources.cpu,
                 "memory": task.resources.memory, "gpu": task.resources.gpu, "timeout": task.timeout,
                 "secrets": task.secrets, "node_selector": task.pod.node_selector,
                 "tolerations": task.pod.tolerations, "annotations": task.pod.annotations}
    return Placement(execution_id=ctx.execution_id, node_id=ctx.node_id, attempt_id=ctx.attempt_id,
                     project=ctx.project, domain=ctx.domain, task_type=task_type,
                     item_index=ctx.item_index, map_size=ctx.map_size, **extra)
