"""The ``sagemaker`` task type, registered through the ``plait_task_types`` hook.

Each hook hands the attempt to :class:`~plait_sagemaker.aws.AwsTrainer` (a real training
job) or :class:`~plait_sagemaker.local.LocalTrainer` (the script as a local process), by the
task's connection when it starts and by the handle's ``mode`` after that.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plait import AttemptContext, CompileError, Status, TaskType, hookimpl
from plait.sdk import Handle, TaskTemplate, TypeSpec
from pydantic import BaseModel

from plait_sagemaker.config import MODE_ENV, TrainingJob
from plait_sagemaker.job import CHANNEL_KINDS

_INSTANCE_TYPE = re.compile(r"^ml\.[a-z][a-z0-9-]*\.[a-z0-9]+$")
_LOCAL_INSTANCE_TYPES = ("local", "local_gpu")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/\S+$")
_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?$")
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class SageMakerTask(TaskType):
    """Runs a SageMaker training job per attempt, on AWS or on this machine."""

    name = "sagemaker"
    config_model = TrainingJob

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._aws: Any = None
        self._local: Any = None

    # -- checks and pools ---------------------------------------------------------------

    def check(self, task: TaskTemplate) -> None:
        config = TrainingJob.model_validate(task.config)
        where = f"sagemaker task {task.name!r}"
        mode = os.environ.get(MODE_ENV, "").strip().lower()
        if mode not in ("", "local"):
            raise CompileError(f"{MODE_ENV}={mode!r}: expected 'local' (run every SageMaker task on this "
                               "machine) or unset")
        _check_code(config, where)
        _check_interface(task, config, where)
        if config.instance_type in _LOCAL_INSTANCE_TYPES:
            if config.mode != "local":
                raise CompileError(f"{where}: instance_type {config.instance_type!r} runs only in local mode; "
                                   "use an ML instance type such as 'ml.m5.large', or connection='local'")
        elif not _INSTANCE_TYPE.match(config.instance_type):
            raise CompileError(f"{where}: instance_type {config.instance_type!r} is not a SageMaker instance "
                               "type; expected a name such as 'ml.m5.large' or 'ml.g5.xlarge'")
        if config.mode == "aws":
            _check_aws(config, where)

    def pools(self, task: TaskTemplate, config: BaseModel | None) -> dict[str, int]:
        assert isinstance(config, TrainingJob)
        if config.mode == "local":
            return {f"sagemaker:local/{config.instance_type}": config.instance_count}
        return {self.aws.pool(config, _resolve_secrets(task), task.name): config.instance_count}

    # -- the task-type hooks ------------------------------------------------------------

    def submit(self, ctx: AttemptContext, task: TaskTemplate) -> Handle:
        config = TrainingJob.model_validate(task.config)
        trainer = self.local if config.mode == "local" else self.aws
        handle: Handle = trainer.submit(ctx, task, config)
        return handle

    def poll(self, ctx: AttemptContext, handle: Handle) -> Status:
        status: Status = self._trainer(handle).poll(ctx, handle)
        return status

    def abort(self, ctx: AttemptContext, handle: Handle) -> None:
        self._trainer(handle).abort(ctx, handle)

    def cleanup(self, ctx: AttemptContext, handle: Handle) -> None:
        self._trainer(handle).cleanup(ctx, handle)

    def close(self) -> None:
        if self._aws is not None:
            self._aws.close()

    # -- the two modes, created on first use ----------------------------------------------

    def _trainer(self, handle: Handle) -> Any:
        return self.local if handle.get("mode") == "local" else self.aws

    @property
    def aws(self) -> Any:
        with self._lock:
            if self._aws is None:
                from plait_sagemaker.aws import AwsTrainer  # imports boto3: only when AWS is used

                self._aws = AwsTrainer()
            return self._aws

    @property
    def local(self) -> Any:
        with self._lock:
            if self._local is None:
                from plait_sagemaker.local import LocalTrainer

                self._local = LocalTrainer()
            return self._local


def _check_code(config: TrainingJob, where: str) -> None:
    if config.source_dir is not None:
        source = Path(config.source_dir)
        if not source.is_dir():
            raise CompileError(f"{where}: source_dir {str(source)!r} is not a folder")
        if Path(config.entry_point).is_absolute() or ".." in Path(config.entry_point).parts:
            raise CompileError(f"{where}: entry_point {config.entry_point!r} must be a path inside source_dir "
                               f"{str(source)!r}")
        if not (source / config.entry_point).is_file():
            raise CompileError(f"{where}: no entry point {config.entry_point!r} in source_dir {str(source)!r}")
    elif not Path(config.entry_point).is_file():
        raise CompileError(f"{where}: no entry point script at {config.entry_point}")


def _check_interface(task: TaskTemplate, config: TrainingJob, where: str) -> None:
    outputs = task.interface.outputs
    if len(outputs) != 1 or next(iter(outputs.values())).kind != "file":
        got = ", ".join(f"{n}: {t.describe()}" for n, t in outputs.items()) or "none"
        raise CompileError(f"{where}: a training job has one output, its model artifact (model.tar.gz) as a "
                           f"plait.File; declare outputs={{'model': File}} (got {got})")
    for name, spec in task.interface.inputs.items():
        if spec.kind in CHANNEL_KINDS:
            if not _NAME.match(name):
                raise CompileError(f"{where}: input {name!r} cannot name a SageMaker channel "
                                   "(letters, digits, '.', '_', '-'; 64 at most)")
        elif _holds_data(spec):
            raise CompileError(f"{where}: input {name!r} of type {spec.describe()} can be neither an input "
                               "channel nor a hyperparameter; pass one File, Directory or DataFrame per channel")
    for name in [*config.hyperparameters, *task.interface.inputs]:
        if name.startswith("sagemaker_"):
            raise CompileError(f"{where}: hyperparameter {name!r}: names starting with 'sagemaker_' are "
                               "SageMaker's own")


def _holds_data(spec: TypeSpec) -> bool:
    return spec.kind in CHANNEL_KINDS or any(_holds_data(a) for a in spec.args) or any(
        _holds_data(f) for f in (spec.fields or {}).values())


def _check_aws(config: TrainingJob, where: str) -> None:
    hint = f" (or set {MODE_ENV}=local to run it on this machine)"
    if not config.role_arn:
        raise CompileError(f"{where}: AWS mode needs role_arn=, the IAM role SageMaker runs the job as{hint}")
    if not _ROLE_ARN.match(config.role_arn):
        raise CompileError(f"{where}: role_arn {config.role_arn!r} is not an IAM role ARN "
                           "(arn:aws:iam::123456789012:role/NAME)")
    if not config.output_s3_uri:
        raise CompileError(f"{where}: AWS mode needs output_s3_uri='s3://bucket/prefix', where the job's "
                           f"data, code and model go{hint}")
    if not _S3_URI.match(config.output_s3_uri):
        raise CompileError(f"{where}: output_s3_uri {config.output_s3_uri!r} is not an S3 URI "
                           "(s3://bucket/prefix)")
    if not config.image_uri:
        raise CompileError(f"{where}: AWS mode needs image_uri=, the training container (for example a "
                           f"SageMaker PyTorch or scikit-learn training image of your region){hint}")


def _resolve_secrets(task: TaskTemplate) -> dict[str, str]:
    """The task's AWS secrets, resolved as the engine resolves them for an attempt.

    ``pools`` is called before an attempt exists, so it has no context to read them from.
    """
    if not task.secrets:
        return {}
    from plait.sdk import Settings

    settings = Settings.from_env()
    found = {}
    for name in task.secrets:
        value = settings.secret(name)
        if value is not None:
            found[name] = value
    return found


@hookimpl
def plait_task_types(register: Callable[[TaskType], None]) -> None:
    register(SageMakerTask())
