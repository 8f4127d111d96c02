"""Configuration of a notebook task."""

from __future__ import annotations

from plait import TaskConfig
from pydantic import ConfigDict, field_validator


class Notebook(TaskConfig):
    """Run the notebook at ``path`` with ``kernel``; ``cell_timeout`` seconds per cell at most."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    task_type = "papermill"

    path: str
    kernel: str = "python3"
    cell_timeout: float | None = None

    @field_validator("path")
    @classmethod
    def _notebook(cls, path: str) -> str:
        if not path.endswith(".ipynb"):
            raise ValueError(f"{path!r} is not a notebook (.ipynb)")
        return path
