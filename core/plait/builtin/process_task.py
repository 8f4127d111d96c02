"""A task type whose attempt is one supervised command line: the pattern of most plugins.

The command reads ``job.json`` from its folder and writes ``result.json`` there; the
execution's platform (``ctx.platform``) runs it (on the local platform a supervised process
group, so submitting again attaches and abort kills the whole tree), and this class turns
the result into a status. A subclass describes only the work:

    class SparkTask(ProcessTask):
        name = "spark"
        config_model = Spark

        def command(self, ctx, task, job):
            return [sys.executable, "-m", "plait_spark.run", str(job)]

The command's side reads the job with :func:`read_job`, calls
:func:`plait.sdk.run_attempt` with its ``payload`` (the Python task to run) and
:func:`write_result`.

``job.json`` stays on disk, so it never holds a secret's value: the attempt's secrets reach
the command only through the platform (locally its environment, read and removed by
:func:`read_job`, which puts them back into the payload).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any, ClassVar

from plait.model.errors import PlaitError
from plait.model.spec import TaskTemplate
from plait.model.status import ErrorKind, Handle, Phase, Status
from plait.model.wire import (
    AttemptPayload,
    AttemptResult,
    CommandWork,
    ObjectKind,
    ObjectRequest,
    ObjectWork,
    ProcessTaskHandle,
)
from plait.plugins.platform import ObjectState, ResultCallback
from plait.plugins.tasktype import AttemptContext, TaskType
from plait.runtime.payload import attempt_payload, placement, status_of
from plait.runtime.placed import PlacedAttempts

POD_KIND = ObjectKind(group="", version="v1", plural="pods", kind="Pod")


class ProcessTask(TaskType):
    """Base class: override :meth:`command`, and :meth:`job` or :meth:`result` if needed.

    To run on Kubernetes as an object of its own (a SparkApplication, a PyTorchJob), a
    subclass also sets :attr:`kubernetes_kind` and implements :meth:`kubernetes_object` and
    :meth:`kubernetes_state`; its entrypoint then reads the job from the blob store (the same
    :func:`read_job` and :func:`write_result` calls: they take a URL as well as a path).
    """

    kubernetes_kind: ClassVar[ObjectKind | None] = None
    """The kind of object an attempt is on Kubernetes; a plain Pod when the subclass only
    implements :meth:`kubernetes_command`."""

    def __init__(self) -> None:
        self._placed = PlacedAttempts()

    # -- what a subclass describes ---------------------------------------------------------

    def command(self, ctx: AttemptContext, task: TaskTemplate, job: Path) -> list[str]:
        """The command line that runs the attempt, given the path of its ``job.json``."""
        raise NotImplementedError

    def job(self, ctx: AttemptContext, task: TaskTemplate, folder: Path) -> dict[str, Any]:
        """What the command reads from ``job.json`` (default: the task's config and Python payload)."""
        return {"config": task.config, "payload": attempt_payload(ctx, task)}

    def environment(self, ctx: AttemptContext, task: TaskTemplate) -> dict[str, str]:
        """Extra environment variables for the command."""
        return dict(task.env)

    def result(self, ctx: AttemptContext, handle: Handle, result: dict[str, Any]) -> Status:
        """Turn the command's ``result.json`` into a status (default: a run_attempt result).

        Read through :class:`plait.model.wire.AttemptResult`: the command may come from another
        install (an image), and a result it cannot describe is an error that says so.
        """
        return status_of(AttemptResult.model_validate(result).model_dump(exclude_none=True))

    def log_links(self, ctx: AttemptContext, handle: Handle) -> dict[str, str]:
        """Where the ended command kept what the task printed, for the attempt's log links
        (default: its stdout and stderr as the platform kept them). A subclass whose command
        starts others that keep their own output (torchrun's ranks) names those files."""
        return ctx.platform.log_paths(handle)

    def kubernetes_command(self, ctx: AttemptContext, task: TaskTemplate, request: ObjectRequest) -> list[str] | None:
        """The command of a plain Pod that runs the attempt on Kubernetes (``request.python``
        with this task type's entrypoint on ``request.job_uri``), or None: not a plain Pod."""
        return None

    def kubernetes_object(self, ctx: AttemptContext, task: TaskTemplate, request: ObjectRequest) -> dict[str, Any]:
        """The object (``apiVersion``, ``kind``, ``spec``) that runs the attempt on Kubernetes,
        its pods running ``request.python`` with this task type's entrypoint on ``request.job_uri``.

        The default is a Pod running :meth:`kubernetes_command`.
        """
        argv = self.kubernetes_command(ctx, task, request)
        if argv is None:
            raise NotImplementedError(f"{type(self).__name__} sets kubernetes_kind but builds no object")
        container: dict[str, Any] = {"name": "task", "image": request.image, "command": argv, "env": request.env,
                                     "resources": request.resources}
        if request.env_from:
            container["envFrom"] = request.env_from
        spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container],
                                "automountServiceAccountToken": False}
        for key, value in (("serviceAccountName", request.service_account), ("nodeSelector", request.node_selector),
                           ("tolerations", request.tolerations),
                           ("imagePullSecrets", [{"name": s} for s in request.image_pull_secrets])):
            if value:
                spec[key] = value
        return {"apiVersion": "v1", "kind": "Pod", "spec": spec}

    def kubernetes_state(self, obj: dict[str, Any]) -> ObjectState:
        """Read an observed object: running, succeeded or failed, and where its log is.

        The default reads the Pod of :meth:`kubernetes_object`.
        """
        status = obj.get("status") or {}
        where = {"log_pod": obj["metadata"]["name"], "log_container": "task"}
        phase = status.get("phase")
        if phase == "Succeeded":
            return ObjectState("succeeded", "Succeeded", **where)
        if phase == "Failed":
            return ObjectState("failed", f"Failed: {status.get('reason') or status.get('message') or 'the pod failed'}",
                               **where)
        return ObjectState("running", phase or "Pending", **where)

    def failure(self, ctx: AttemptContext, handle: Handle, code: int) -> Status:
        """The status when the command exited without writing a result."""
        _, stderr = ctx.platform.logs(handle)
        lines = [line for line in stderr.strip().splitlines() if not line.strip().startswith("at ")]
        tail = "\n".join(lines[-30:])
        return Status.failed(f"the {self.name} process exited with code {code} before reporting a result:\n{tail}",
                             error_kind=ErrorKind.SYSTEM)

    # -- the task-type hooks ---------------------------------------------------------------

    def submit(self, ctx: AttemptContext, task: TaskTemplate) -> Handle:
        if ctx.platform.places_work:
            return self._place(ctx, task)
        folder = ctx.folder / self.name
        folder.mkdir(parents=True, exist_ok=True)
        job = folder / "job.json"
        if not job.exists():  # submitting again attaches: the job stays as it was
            content = {"workdir": str(folder), **self.job(ctx, task, folder)}
            if isinstance(content.get("payload"), dict):  # typed and versioned; secrets never serialised
                content["payload"] = AttemptPayload.model_validate(content["payload"]).model_dump(mode="json")
            job.write_text(json.dumps(content))
        work = CommandWork(folder=str(folder / "process"), argv=self.command(ctx, task, job),
                           env=self.environment(ctx, task), secrets=ctx.secrets)
        return ProcessTaskHandle(**ctx.platform.start(work), job=str(folder)).model_dump()

    def _place(self, ctx: AttemptContext, task: TaskTemplate) -> Handle:
        """Hand the attempt to a platform that runs it as an object of this task type's kind."""
        kind = self._kind()
        if kind is None:
            raise PlaitError(f"the {self.name} task type does not run on the {ctx.platform.name} platform yet; "
                             "run it with --platform local")
        job = ctx.attempt_id
        handle = ProcessTaskHandle(platform=ctx.platform.name, job="", remote=job).model_dump()
        if job in self._placed:
            return handle
        content = self.job(ctx, task, ctx.folder / self.name)
        if isinstance(content.get("payload"), dict):  # typed and versioned; secrets never serialised
            content["payload"] = AttemptPayload.model_validate(content["payload"]).model_dump(mode="json")
        work = ObjectWork(kind=kind, job={**content, "secret_names": list(task.secrets)},
                          env=self.environment(ctx, task))
        self._placed.placing(job)
        ctx.platform.submit_object(job, work, functools.partial(self.kubernetes_object, ctx, task),
                                   self.kubernetes_state, self._placed.on_done(job, ctx),
                                   placement(ctx, task, self.name))
        return handle

    def _kind(self) -> ObjectKind | None:
        if self.kubernetes_kind is not None:
            return self.kubernetes_kind
        if type(self).kubernetes_command is not ProcessTask.kubernetes_command:
            return POD_KIND
        return None

    def _poll_placed(self, ctx: AttemptContext, handle: Handle) -> Status:
        job = handle["remote"]
        kind = self._kind()
        assert kind is not None

        def attach(done: ResultCallback) -> bool:  # created by an engine that stopped
            return ctx.platform.attach_object(job, kind, self.kubernetes_state, done,
                                              placement(ctx, task_type=self.name))

        def read(result: dict[str, Any]) -> Status:
            if result.pop("platform_failure", False):  # the object failed before its entrypoint could report
                return status_of(result)
            try:
                return self.result(ctx, handle, result)
            except ValueError as exc:
                return Status.failed(f"the {self.name} entrypoint wrote a result plait cannot read: {exc}",
                                     error_kind=ErrorKind.SYSTEM)

        return self._placed.poll(ctx, job, attach,
                                 f"this attempt's {kind.kind} is gone (the engine that started it stopped)", read=read)

    def poll(self, ctx: AttemptContext, handle: Handle) -> Status:
        if handle.get("remote"):
            return self._poll_placed(ctx, handle)
        code = ctx.platform.exit_code(handle)
        if code is None:
            return Status(Phase.RUNNING)
        result = Path(ProcessTaskHandle.model_validate(handle).job) / "result.json"
        if result.exists():
            status = self.result(ctx, handle, json.loads(result.read_text()))
        else:
            status = self.failure(ctx, handle, code)
        return dataclasses.replace(status, log_links={**self.log_links(ctx, handle), **status.log_links})

    def abort(self, ctx: AttemptContext, handle: Handle) -> None:
        if handle.get("remote"):
            self._placed.abort(ctx, handle["remote"])
            return
        ctx.platform.kill(handle)

    def cleanup(self, ctx: AttemptContext, handle: Handle) -> None:
        if handle.get("remote"):
            self._placed.forget(handle["remote"])
            return
        ctx.platform.kill(handle)
        ctx.platform.release(handle)
