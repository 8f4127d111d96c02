"""The ``container`` task type: a command line with typed inputs and outputs.

``{{inputs.NAME}}`` in the command is replaced by the input's value (a local path for a
``File`` or ``Directory``, JSON for lists, dicts and structs) and ``{{outputs}}`` by a
folder where the command writes one file per output, named after it. A secret the task
declares (``secrets=["api-token"]``) is an environment variable of the command
(``API_TOKEN``), never part of the command line. On the local platform
the command runs on this machine as a supervised process group (the image is for the
Kubernetes platform): the task type describes the command, and ``ctx.platform`` runs it.
Copy this module to write a task type of your own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plait.authoring.container import Container
from plait.hookspecs import hookimpl
from plait.model.errors import CompileError, PlaitError
from plait.model.settings import secret_env_name
from plait.model.spec import TaskTemplate
from plait.model.status import ErrorKind, Handle, Phase, Status
from plait.model.wire import CommandWork, ContainerHandle
from plait.plugins.tasktype import AttemptContext, TaskType

_PLACEHOLDER = re.compile(r"\{\{\s*(inputs\.([A-Za-z_][A-Za-z0-9_]*)|outputs)\s*\}\}")







class ContainerTask(TaskType):
    name = "container"
    config_model = Container

    def check(self, task: TaskTemplate) -> None:
        config = Container.model_validate(task.config)
        for arg in config.command:
            for match in _PLACEHOLDER.finditer(arg):
                name = match.group(2)
                if name is not None and name not in task.interface.inputs:
                    raise CompileError(
                        f"container task {task.name!r}: the command uses {{{{inputs.{name}}}}}, but the "
                        f"task's inputs are {', '.join(task.interface.inputs) or 'none'}")

    def submit(self, ctx: AttemptContext, task: TaskTemplate) -> Handle:
        config = Container.model_validate(task.config)
        outdir = ctx.folder / "outputs"
        outdir.mkdir(parents=True, exist_ok=True)
        argv = [self._render(arg, ctx, task, outdir) for arg in config.command]
        # Declared secrets are environment variables of the command: api-token as API_TOKEN.
        work = CommandWork(folder=str(ctx.folder / "process"), argv=argv, env={**task.env, **config.env},
                           image=config.image,
                           secret_env={secret_env_name(name): value for name, value in ctx.secrets.items()})
        outputs = {n: spec.kind for n, spec in task.interface.outputs.items()}
        return ContainerHandle(**ctx.platform.start(work), outputs=outputs).model_dump()

    def _render(self, arg: str, ctx: AttemptContext, task: TaskTemplate, outdir: Path) -> str:
        def value(match: re.Match[str]) -> str:
            if match.group(1) == "outputs":
                return str(outdir)
            name = match.group(2)
            if name not in ctx.inputs:
                raise PlaitError(f"container task {task.name}: the command uses {{{{inputs.{name}}}}}, "
                                 f"but the task has no input {name!r}")
            literal = ctx.inputs[name]
            kind = task.interface.inputs[name].kind
            if kind == "file":
                return str(ctx.blobs.get_file(literal["uri"], ctx.folder / "inputs" / name))
            if kind == "directory":
                return str(ctx.blobs.get_dir(literal["uri"], ctx.folder / "inputs" / name))
            if isinstance(literal, str):
                return literal
            return json.dumps(literal)

        return _PLACEHOLDER.sub(value, arg)

    def poll(self, ctx: AttemptContext, handle: Handle) -> Status:
        code = ctx.platform.exit_code(handle)
        if code is None:
            return Status(Phase.RUNNING)
        _, stderr = ctx.platform.logs(handle)
        logs = ctx.platform.log_paths(handle)
        if code != 0:
            tail = "\n".join(stderr.strip().splitlines()[-20:])
            return Status.failed(f"command exited with code {code}" + (f":\n{tail}" if tail else ""),
                                 retryable=True, error_kind=ErrorKind.USER, log_links=logs)
        status = self._outputs(ctx, handle)
        return Status(status.phase, status.message, status.outputs, status.retryable, status.error_kind, logs)

    def _outputs(self, ctx: AttemptContext, handle: Handle) -> Status:
        outdir = ctx.folder / "outputs"
        outputs: dict[str, Any] = {}
        for name, kind in ContainerHandle.model_validate(handle).outputs.items():
            path = outdir / name
            if not path.exists():
                return Status.failed(f"the command did not write output {name!r} (expected the file {path})",
                                     retryable=False)
            if kind == "file":
                outputs[name] = {"uri": ctx.blobs.put_file(path)}
            elif kind == "directory":
                outputs[name] = {"uri": ctx.blobs.put_dir(path)}
            elif kind == "str":
                outputs[name] = path.read_text().rstrip("\n")
            else:
                try:
                    outputs[name] = json.loads(path.read_text())
                except json.JSONDecodeError as exc:
                    return Status.failed(f"output {name!r} ({kind}) is not valid JSON: {exc}",
                                         retryable=False)
        return Status.succeeded(outputs)

    def abort(self, ctx: AttemptContext, handle: Handle) -> None:
        ctx.platform.kill(handle)

    def cleanup(self, ctx: AttemptContext, handle: Handle) -> None:
        ctx.platform.kill(handle)
        ctx.platform.release(handle)


@hookimpl
def plait_task_types(register: Callable[[TaskType], None]) -> None:
    register(ContainerTask())
