"""plait-papermill: a Jupyter notebook as a typed plait task.

    from plait_papermill import notebook_task

    report = notebook_task("report", "notebooks/report.ipynb",
                           inputs={"rows": int}, outputs={"mean": float})

Inputs are injected as papermill parameters (a cell tagged ``parameters`` holds the
defaults); the notebook returns outputs by calling ``plait_papermill.record(name, value)``.
The executed notebook and an HTML rendering of it are kept in the blob store.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from plait import Task, external_task

from plait_papermill.config import Notebook

RECORD_ENV = "PLAIT_NOTEBOOK_RECORD"

__all__ = ["Notebook", "notebook_task", "record"]


def notebook_task(name: str, path: str | os.PathLike[str], *, inputs: dict[str, Any] | None = None,
                  outputs: dict[str, Any] | None = None, kernel: str = "python3",
                  cell_timeout: float | None = None, **options: Any) -> Task[Any]:
    """A task that runs the notebook at ``path`` (relative to the caller's working directory)."""
    config = Notebook(path=str(Path(path).resolve()), kernel=kernel, cell_timeout=cell_timeout)
    return external_task(name, config, inputs=inputs, outputs=outputs, **options)


def record(name: str, value: Any) -> None:
    """Inside a notebook run by plait: make ``value`` the task's output ``name``.

    Values are JSON (numbers, strings, lists, dicts); a ``pathlib.Path`` stands for a File
    output and a pandas DataFrame for a data-frame output.
    """
    target = os.environ.get(RECORD_ENV)
    if not target:
        raise RuntimeError("plait_papermill.record() works only in a notebook run by plait")
    if hasattr(value, "to_parquet"):
        path = Path(target).with_name(f"{name}.parquet")
        value.to_parquet(path)
        value = {"$path": str(path)}
    elif isinstance(value, Path):
        value = {"$path": str(value.resolve())}
    with open(target, "a") as fh:
        fh.write(json.dumps({"name": name, "value": value}) + "\n")
