"""plait's exception types.

Errors a user can cause derive from :class:`PlaitError`; their message names the thing, says
what was expected and what to do. The CLI prints them without a traceback.

Inside a task, :class:`RetryableError` and :class:`PermanentError` tell the engine whether a
failure is worth another attempt; any other exception counts against the task's user retry
budget.
"""

from __future__ import annotations


class PlaitError(Exception):
    """An error the user can fix; printed without a traceback by the CLI."""


class CompileError(PlaitError):
    """A workflow or task definition is invalid; raised before anything runs."""


class TypeMismatchError(CompileError):
    """A value or binding does not match the declared type."""


class UnknownTaskTypeError(CompileError):
    """A task names a task type that no installed plugin registers."""


class UnknownPlatformError(PlaitError):
    """An execution asks for a platform that no installed plugin registers."""


class PluginError(PlaitError):
    """A plugin is malformed, failed to load, or conflicts with another plugin."""


class PluginConflictError(PluginError):
    """Two plugins register the same task type or type transformer name."""


class InputError(PlaitError):
    """A workflow input given on the command line or to ``run`` is missing or malformed."""


class ExecutionNotFoundError(PlaitError):
    """No execution with that id is in the store."""


class TaskFailure(Exception):
    """Raised by user code inside a task to choose how the engine treats the failure."""


class RetryableError(TaskFailure):
    """A failure worth another attempt (a flaky service, a lost connection)."""


class PermanentError(TaskFailure):
    """A failure that no retry will fix: the node fails at once, whatever its retry budget."""


class ExecutionFailed(PlaitError):
    """An execution ended in failure; carries the failing node and its error."""

    def __init__(self, execution_id: str, node: str | None, error: str) -> None:
        self.execution_id = execution_id
        self.node = node
        self.error = error
        where = f"node {node!r}" if node else "the execution"
        super().__init__(f"execution {execution_id} failed at {where}: {error}")


class EntityConflictError(PlaitError):
    """Different content registered under a task's, workflow's or launch plan's existing version."""


class EntityNotFoundError(PlaitError):
    """No registered entity with that project, domain, kind, name and version."""
