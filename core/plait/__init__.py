"""plait: typed, versioned workflows of pluggable tasks, on a laptop or on Kubernetes."""

from plait.authoring import (
    Outputs,
    Promise,
    Task,
    Workflow,
    container_task,
    dynamic,
    external_task,
    map,
    task,
    workflow,
)
from plait.context import Checkpoint, TaskContext, current_context
from plait.errors import (
    CompileError,
    ExecutionFailed,
    PermanentError,
    PlaitError,
    PluginError,
    RetryableError,
    TypeMismatchError,
    UnknownTaskTypeError,
)
from plait.files import Directory, File
from plait.hookspecs import hookimpl
from plait.runner import Execution, run
from plait.spec import Resources, WorkflowSpec
from plait.tasktype import AttemptContext, Phase, Status, TaskConfig, TaskType

__version__ = "0.1.0"

__all__ = [
    "AttemptContext", "Checkpoint", "CompileError", "Directory", "Execution", "ExecutionFailed", "File",
    "Outputs", "PermanentError", "Phase", "PlaitError", "PluginError", "Promise", "Resources",
    "RetryableError", "Status", "Task", "TaskConfig", "TaskContext", "TaskType", "TypeMismatchError",
    "UnknownTaskTypeError", "Workflow", "WorkflowSpec", "container_task", "current_context", "dynamic",
    "external_task", "hookimpl", "map", "run", "task", "workflow",
]
