"""The engine: runs compiled workflows, event-sourced, from a ready queue."""

from plait.engine.execution import Engine, ExecutionResult, Listener, RunOptions, new_execution_id

__all__ = ["Engine", "ExecutionResult", "Listener", "RunOptions", "new_execution_id"]
