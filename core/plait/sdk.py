"""The plugin author's whole surface: a plugin imports only this, ``plait`` and ``plait.testing``.

Everything here is stable API for plugins; everything else under ``plait.`` may move. A test
(``tests/plugins/test_sdk.py``) fails when a plugin in this repository imports anything else.

Groups, in the order a new task type needs them:

- the contract: :data:`hookimpl`, :class:`TaskType`, :class:`TaskConfig`, :class:`AttemptContext`,
  :class:`Status`, :class:`Phase`, :class:`ErrorKind`, :data:`Handle`, :class:`TaskTemplate`;
- a task whose attempt is a command line: :class:`ProcessTask`, and on the command's side
  :func:`read_job`, :func:`run_attempt`, :func:`write_result`; :func:`attempt_payload` and
  :func:`status_of` for a command that runs the task's Python function itself;
- where compute runs: :class:`Platform` (``ctx.platform``), and :class:`CommandWork`, the
  command line a compute task type hands it; :class:`LocalProcess`, a supervised process on
  this machine, for a service's explicit offline stand-in (SageMaker's local mode);
- value types: :class:`TypeTransformer`, :class:`TypeEngine`, :class:`TypeSpec`, :data:`Codec`,
  :class:`ValueIO`, :func:`load_offloaded`;
- task constructors: :class:`Task`, :func:`external_task`, :class:`File`, :class:`Directory`;
- errors: :class:`PlaitError`, :class:`CompileError`, :class:`TypeMismatchError`,
  :class:`RetryableError`, :class:`PermanentError`;
- where plait keeps its state: :class:`Settings`, :func:`default_workers`.
"""

from plait.authoring.decorators import Task, external_task
from plait.builtin.process_task import ProcessTask
from plait.hookspecs import hookimpl
from plait.model.errors import (
    CompileError,
    PermanentError,
    PlaitError,
    RetryableError,
    TypeMismatchError,
)
from plait.model.settings import Settings, default_workers
from plait.model.spec import TaskTemplate
from plait.model.status import ErrorKind, Handle, Phase, Status
from plait.model.typespec import TypeSpec
from plait.model.wire import CommandWork, ObjectKind, ObjectRequest, SecretRef
from plait.platforms.local.process import LocalProcess
from plait.plugins.platform import ObjectState, Platform
from plait.plugins.tasktype import AttemptContext, TaskConfig, TaskType
from plait.runtime.attempt import run_attempt
from plait.runtime.job import read_job, write_file, write_result
from plait.runtime.payload import attempt_payload, status_of
from plait.storage.blobs import BlobStore
from plait.types.engine import Codec, TypeEngine, TypeTransformer, ValueIO, load_offloaded
from plait.types.files import Directory, File

__all__ = [
    "AttemptContext", "BlobStore", "Codec", "CommandWork", "CompileError", "Directory", "ErrorKind", "File",
    "Handle", "LocalProcess", "ObjectKind", "ObjectRequest", "ObjectState", "PermanentError", "Phase", "PlaitError", "Platform", "ProcessTask",
    "RetryableError", "SecretRef", "Settings", "Status", "Task", "TaskConfig", "TaskTemplate",
    "TaskType", "TypeEngine", "TypeMismatchError", "TypeSpec", "TypeTransformer", "ValueIO",
    "attempt_payload", "default_workers", "external_task", "hookimpl", "load_offloaded", "read_job",
    "run_attempt", "status_of", "write_file", "write_result",
]
