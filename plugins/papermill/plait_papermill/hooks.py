"""The ``papermill`` task type: registered through the ``plait_task_types`` hook."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plait import AttemptContext, CompileError, Status, TaskType, hookimpl
from plait.sdk import Handle, ObjectRequest, ProcessTask, TaskTemplate

from plait_papermill.config import Notebook


class PapermillTask(ProcessTask):
    """Runs a notebook with papermill in its own process; its kernel goes with it on abort."""

    name = "papermill"
    config_model = Notebook

    def check(self, task: TaskTemplate) -> None:
        path = Path(Notebook.model_validate(task.config).path)
        if not path.is_file():
            raise CompileError(f"notebook task {task.name!r}: no notebook at {path}")

    def job(self, ctx: AttemptContext, task: TaskTemplate, folder: Path) -> dict[str, Any]:
        config = Notebook.model_validate(task.config)
        outputs = {n: spec.kind for n, spec in task.interface.outputs.items()}
        if ctx.platform.places_work:  # a pod: the notebook and file inputs go through the blob store
            parameters = {name: self._remote_parameter(ctx, name, task.interface.inputs[name].kind)
                          for name in task.interface.inputs}
            return {"path": Path(config.path).name, "notebook_uri": ctx.blobs.put_file(config.path),
                    "blobs": ctx.blobs.url, "kernel": config.kernel, "parameters": parameters,
                    "cell_timeout": config.cell_timeout, "outputs": outputs}
        parameters = {name: self._parameter(ctx, folder, name, task.interface.inputs[name].kind)
                      for name in task.interface.inputs}
        return {"path": config.path, "kernel": config.kernel, "parameters": parameters,
                "cell_timeout": config.cell_timeout, "outputs": outputs}

    def command(self, ctx: AttemptContext, task: TaskTemplate, job: Path) -> list[str]:
        return [sys.executable, "-m", "plait_papermill.run", str(job)]

    def kubernetes_command(self, ctx: AttemptContext, task: TaskTemplate, request: ObjectRequest) -> list[str]:
        return [request.python, "-m", "plait_papermill.run", request.job_uri]

    @staticmethod
    def _remote_parameter(ctx: AttemptContext, name: str, kind: str) -> Any:
        literal = ctx.inputs[name]
        if kind in ("file", "dataframe", "directory"):
            return {"$blob": literal["uri"], "kind": kind}  # fetched by the pod
        return literal

    @staticmethod
    def _parameter(ctx: AttemptContext, workdir: Path, name: str, kind: str) -> Any:
        literal = ctx.inputs[name]
        if kind in ("file", "dataframe"):
            suffix = ".parquet" if kind == "dataframe" else ""
            return str(ctx.blobs.get_file(literal["uri"], workdir / "inputs" / f"{name}{suffix}"))
        if kind == "directory":
            return str(ctx.blobs.get_dir(literal["uri"], workdir / "inputs" / name))
        return literal

    def result(self, ctx: AttemptContext, handle: Handle, result: dict[str, Any]) -> Status:
        folder = Path(handle["job"])
        links = dict(result.get("artifacts") or {})  # a pod stored them already
        for name, file in (("notebook", "executed.ipynb"), ("report", "report.html")):
            if "artifacts" not in result and (folder / file).exists():
                links[name] = ctx.blobs.put_file(folder / file)
        if result["status"] == "failed":
            message = (f"cell {result['cell']} raised {result['ename']}: {result['evalue']}\n"
                       f"--- cell {result['cell']} ---\n{result['source']}\n--- traceback ---\n{result['traceback']}")
            return Status.failed(message, log_links=links)
        if result["status"] == "error":
            return Status.failed(f"the notebook could not run: {result['message']}", retryable=False, log_links=links)
        if "outputs" in result:  # a pod turned the records into outputs already
            return Status.succeeded(result["outputs"], log_links=links)
        outputs: dict[str, Any] = {}
        kinds = json.loads((folder / "job.json").read_text())["outputs"]
        for name, kind in kinds.items():
            if name not in result["records"]:
                return Status.failed(f"the notebook did not record output {name!r}: call "
                                     f"plait_papermill.record({name!r}, value) in a cell", retryable=False,
                                     log_links=links)
            outputs[name] = self._output(ctx, result["records"][name], kind)
        return Status.succeeded(outputs, log_links=links)

    @staticmethod
    def _output(ctx: AttemptContext, value: Any, kind: str) -> Any:
        if kind in ("file", "dataframe") and isinstance(value, dict) and "$path" in value:
            path = Path(value["$path"])
            if kind == "file":
                return {"uri": ctx.blobs.put_file(path)}
            import pyarrow.parquet as pq

            rows = pq.read_metadata(path).num_rows
            return {"uri": ctx.blobs.put_bytes(path.read_bytes(), ".parquet"), "format": "parquet", "rows": rows}
        return value


@hookimpl
def plait_task_types(register: Callable[[TaskType], None]) -> None:
    register(PapermillTask())
