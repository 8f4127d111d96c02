"""plait: typed, versioned workflows of pluggable tasks, on a laptop or on Kubernetes.

This package is the user API. Importing it also wires the layers that must not import each
other upward: the type engine learns how to load the plugins, and a workflow called as a
plain function learns how to run. The engine (and the store under it) is imported the first
time something runs, not by ``import plait``: a task's worker and a program that only defines
workflows never pay for it.
"""

from typing import TYPE_CHECKING, Any

from plait.authoring import decorators as _decorators
from plait.authoring.container import container_task
from plait.authoring.decorators import (
    Outputs,
    Promise,
    Task,
    Workflow,
    dynamic,
    external_task,
    map,
    task,
    workflow,
)
from plait.authoring.launchplan import Cron, FixedRate, LaunchPlan
from plait.hookspecs import hookimpl
from plait.model.errors import (
    CompileError,
    ExecutionFailed,
    PermanentError,
    PlaitError,
    PluginError,
    RetryableError,
    TypeMismatchError,
    UnknownTaskTypeError,
)
from plait.model.spec import PodOptions, Resources, WorkflowSpec
from plait.model.status import Phase, Status
from plait.plugins.registry import load_registry as _load_registry
from plait.plugins.tasktype import AttemptContext, TaskConfig, TaskType
from plait.runtime.context import Checkpoint, TaskContext, current_context
from plait.types.engine import set_loader as _set_type_loader
from plait.types.files import Directory, File

if TYPE_CHECKING:
    from plait.service.run import Execution, run


def __getattr__(name: str) -> Any:
    if name in ("run", "Execution"):
        from plait.service import run as _run

        return getattr(_run, name)
    raise AttributeError(f"module 'plait' has no attribute {name!r}")


def _run_inline(*args: Any, **kwargs: Any) -> Any:
    from plait.service.run import run_inline

    return run_inline(*args, **kwargs)


_set_type_loader(_load_registry)
_decorators.set_inline_runner(_run_inline)

__version__ = "0.1.0"

__all__ = [
    "AttemptContext", "Checkpoint", "CompileError", "Cron", "Directory", "Execution", "ExecutionFailed", "File",
    "FixedRate", "LaunchPlan", "Outputs", "PermanentError", "Phase", "PlaitError", "PluginError", "PodOptions", "Promise", "Resources",
    "RetryableError", "Status", "Task", "TaskConfig", "TaskContext", "TaskType", "TypeMismatchError",
    "UnknownTaskTypeError", "Workflow", "WorkflowSpec", "container_task", "current_context", "dynamic",
    "external_task", "hookimpl", "map", "run", "task", "workflow",
]
