"""The engine: runs compiled workflows, event-sourced, from a ready queue."""

from plait.engine.execution import (
           Engine,
           ExecutionResult,
           Listener,
           RunOptions,
           build_engine,
           new_execution_id,
)
from plait.engine.services import EngineServices, build_services

__all__ = ["Engine", "EngineServices", "ExecutionResult", "Listener", "RunOptions", "build_engine",
           "build_services", "new_execution_id"]
