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

from plait.authoring.container import Container
from plait.hookspecs import hookimpl
from plait.model.errors import CompileError, PlaitError
from plait.model.settings import secret_env_name
from plait.model.spec import TaskTemplate
from plait.model.status import ErrorKind, Handle, Phase, Status
from plait.model.wire import CommandWork, ContainerHandle, ContainerWork
from plait.plugins.platform import ResultCallback
from plait.plugins.tasktype import AttemptContext, TaskType
from plait.runtime.payload import placement
from plait.runtime.placed import PlacedAttempts
from plait.runtime.transfer import collect_outputs

_PLACEHOLDER = re.compile(r"\{\{\s*(inputs\.([A-Za-z_][A-Za-z0-9_]*)|outputs)\s*\}\}")


class ContainerTask(TaskType):
    name = "container"
    config_model = Container

    def __init__(self) -> None:
        self._placed = PlacedAttempts()
        """Attempts placed on a platform that runs them in their image (Kubernetes)."""

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
        if ctx.platform.places_work:
            return self._place(ctx, task)
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

    def _place(self, ctx: AttemptContext, task: TaskTemplate) -> Handle:
        """Hand the attempt to a platform that runs it in its image: the command unchanged,
        with its inputs and outputs under the folder the platform shares with it."""
        job = ctx.attempt_id
        outputs = {n: spec.kind for n, spec in task.interface.outputs.items()}
        handle = ContainerHandle(platform=ctx.platform.name, outputs=outputs, job=job).model_dump()
        if job in self._placed:
            return handle
        config = Container.model_validate(task.config)
        root = "/plait"
        argv = [self._render(arg, ctx, task, Path(root) / "outputs", inputs_at=Path(root) / "inputs")
                for arg in config.command]
        files = {name: {"uri": ctx.inputs[name]["uri"], "kind": spec.kind}
                 for name, spec in task.interface.inputs.items() if spec.kind in ("file", "directory")}
        work = ContainerWork(image=config.image, argv=argv, env={**task.env, **config.env}, root=root,
                             secret_env={secret_env_name(name): name for name in task.secrets},
                             inputs=files, outputs=outputs)
        self._placed.placing(job)
        ctx.platform.submit_container(job, work, self._placed.on_done(job, ctx), placement(ctx, task, "container"))
        return handle

    def _render(self, arg: str, ctx: AttemptContext, task: TaskTemplate, outdir: Path,
                inputs_at: Path | None = None) -> str:
        def value(match: re.Match[str]) -> str:
            if match.group(1) == "outputs":
                return str(outdir)
            name = match.group(2)
            if name not in ctx.inputs:
                raise PlaitError(f"container task {task.name}: the command uses {{{{inputs.{name}}}}}, "
                                 f"but the task has no input {name!r}")
            literal = ctx.inputs[name]
            kind = task.interface.inputs[name].kind
            if inputs_at is not None and kind in ("file", "directory"):
                return str(inputs_at / name)  # the platform's first step puts it there
            if kind == "file":
                return str(ctx.blobs.get_file(literal["uri"], ctx.folder / "inputs" / name))
            if kind == "directory":
                return str(ctx.blobs.get_dir(literal["uri"], ctx.folder / "inputs" / name))
            if isinstance(literal, str):
                return literal
            return json.dumps(literal)

        return _PLACEHOLDER.sub(value, arg)

    def poll(self, ctx: AttemptContext, handle: Handle) -> Status:
        if handle.get("job"):
            return self._poll_placed(ctx, handle)
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
        kinds = ContainerHandle.model_validate(handle).outputs
        outputs, error = collect_outputs(ctx.folder / "outputs", kinds, ctx.blobs)
        return Status.failed(error, retryable=False) if error else Status.succeeded(outputs)

    def _poll_placed(self, ctx: AttemptContext, handle: Handle) -> Status:
        job = handle["job"]

        def attach(done: ResultCallback) -> bool:  # submitted by an engine that stopped
            return ctx.platform.attach_python(job, done, placement(ctx, task_type="container"))

        return self._placed.poll(ctx, job, attach, "this attempt's pod is gone (the engine that started it stopped)")

    def abort(self, ctx: AttemptContext, handle: Handle) -> None:
        if handle.get("job"):
            self._placed.abort(ctx, handle["job"])
            return
        ctx.platform.kill(handle)

    def cleanup(self, ctx: AttemptContext, handle: Handle) -> None:
        if handle.get("job"):
            self._placed.forget(handle["job"])
            return
        ctx.platform.kill(handle)
        ctx.platform.release(handle)


@hookimpl
def plait_task_types(register: Callable[[TaskType], None]) -> None:
    register(ContainerTask())
