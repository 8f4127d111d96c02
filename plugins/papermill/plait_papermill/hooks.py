"""The ``papermill`` task type: registered through the ``plait_task_types`` hook."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plait import AttemptContext, CompileError, Status, TaskType, hookimpl
from plait.local import LocalProcess
from plait.spec import TaskTemplate
from plait.tasktype import ErrorKind, Handle, Phase

from plait_papermill.config import Notebook


class PapermillTask(TaskType):
    """Runs a notebook with papermill in its own process; its kernel goes with it on abort."""

    name = "papermill"
    config_model = Notebook

    def __init__(self) -> None:
        self.processes = LocalProcess()

    def check(self, task: TaskTemplate) -> None:
        path = Path(Notebook.model_validate(task.config).path)
        if not path.is_file():
            raise CompileError(f"notebook task {task.name!r}: no notebook at {path}")

    def submit(self, ctx: AttemptContext, task: TaskTemplate) -> Handle:
        config = Notebook.model_validate(task.config)
        workdir = ctx.folder / "notebook"
        workdir.mkdir(parents=True, exist_ok=True)
        job = workdir / "job.json"
        if not job.exists():
            parameters = {name: self._parameter(ctx, workdir, name, task.interface.inputs[name].kind)
                          for name in task.interface.inputs}
            job.write_text(json.dumps({"path": config.path, "kernel": config.kernel, "parameters": parameters,
                                       "workdir": str(workdir), "cell_timeout": config.cell_timeout}))
        handle = self.processes.start(workdir / "process", [sys.executable, "-m", "plait_papermill.run", str(job)],
                                      env=task.env)
        handle["notebook"] = str(workdir)
        handle["outputs"] = {n: spec.kind for n, spec in task.interface.outputs.items()}
        return handle

    @staticmethod
    def _parameter(ctx: AttemptContext, workdir: Path, name: str, kind: str) -> Any:
        literal = ctx.inputs[name]
        if kind in ("file", "dataframe"):
            suffix = ".parquet" if kind == "dataframe" else ""
            return str(ctx.blobs.get_file(literal["uri"], workdir / "inputs" / f"{name}{suffix}"))
        if kind == "directory":
            return str(ctx.blobs.get_dir(literal["uri"], workdir / "inputs" / name))
        return literal

    def poll(self, ctx: AttemptContext, handle: Handle) -> Status:
        code = self.processes.exit_code(handle)
        if code is None:
            return Status(Phase.RUNNING)
        workdir = Path(handle["notebook"])
        result_file = workdir / "result.json"
        if not result_file.exists():
            _, stderr = self.processes.logs(handle)
            tail = "\n".join(stderr.strip().splitlines()[-20:])
            return Status.failed(f"the notebook runner exited with code {code} before finishing:\n{tail}",
                                 error_kind=ErrorKind.SYSTEM)
        result = json.loads(result_file.read_text())
        links = {}
        for name, file in (("notebook", "executed.ipynb"), ("report", "report.html")):
            if (workdir / file).exists():
                links[name] = ctx.blobs.put_file(workdir / file)
        if result["status"] == "failed":
            message = (f"cell {result['cell']} raised {result['ename']}: {result['evalue']}\n"
                       f"--- cell {result['cell']} ---\n{result['source']}\n--- traceback ---\n{result['traceback']}")
            return Status.failed(message, log_links=links)
        if result["status"] == "error":
            return Status.failed(f"the notebook could not run: {result['message']}", retryable=False, log_links=links)
        outputs: dict[str, Any] = {}
        for name, kind in handle["outputs"].items():
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

    def abort(self, ctx: AttemptContext, handle: Handle) -> None:
        self.processes.kill(handle)  # the kernel too: it runs in a session of its own, but inherits the marker

    def cleanup(self, ctx: AttemptContext, handle: Handle) -> None:
        self.abort(ctx, handle)
        self.processes.forget(handle)


@hookimpl
def plait_task_types(register: Callable[[TaskType], None]) -> None:
    register(PapermillTask())
