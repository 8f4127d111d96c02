"""Wire types: what crosses a process boundary, typed and versioned.

Each model carries ``schema_version``; a reader refuses a newer major version with a message
that says which side to upgrade (an attempt payload written by a newer engine, read by a
pod built from an older image), instead of misreading it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plait.model.errors import PlaitError

SCHEMA_VERSION = 1
"""The wire schema this plait writes. Bump it when a model changes incompatibly."""


class WireModel(BaseModel):
    """Base of the wire types: strict about unknown fields, versioned."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION

    @model_validator(mode="before")
    @classmethod
    def _known_version(cls, data: Any) -> Any:
        if isinstance(data, dict):
            version = data.get("schema_version", SCHEMA_VERSION)
            if not isinstance(version, int) or version > SCHEMA_VERSION:
                raise WireVersionError(
                    f"{cls.__name__} has schema version {version!r}, but this plait reads versions up to "
                    f"{SCHEMA_VERSION}: upgrade plait where this is read (the image of the pod, or the worker)")
        return data


class WireVersionError(PlaitError):
    """A wire message from a newer plait than the one reading it."""


class SecretRef(WireModel):
    """A secret by name; the platform resolves it where the work runs, never into a file."""

    name: str
    env: str | None = None
    """The environment variable it is exposed as, when the work reads it from there."""


class CommandWork(WireModel):
    """One command line, as a compute task type describes it to a platform.

    ``folder`` is the attempt's own folder for the platform's state (local) or the name of
    the object it creates (Kubernetes), so starting again attaches. ``secrets`` are values
    for this process only: a platform passes them to the command through its environment
    (locally) or as Secret references (Kubernetes), never through a file or a manifest.
    """

    kind: Literal["command"] = "command"
    folder: str
    argv: list[str]
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    image: str | None = None
    secrets: dict[str, str] = Field(default_factory=dict, repr=False, exclude=True)
    """The attempt's secrets by name, for plait's runtime in the command (:func:`plait.sdk.read_job`)."""
    secret_env: dict[str, str] = Field(default_factory=dict, repr=False, exclude=True)
    """Secrets the command reads as environment variables (a container task's ``API_TOKEN``)."""

    def __repr__(self) -> str:  # never show secret values
        return f"CommandWork(folder={self.folder!r}, argv={self.argv!r})"


class AttemptPayload(WireModel):
    """What a Python attempt needs to run: the contract between an engine and the runtime.

    The engine's worker pool passes it as a plain dict of these fields (the hot path of a
    large map); wherever it is written down or crosses to another install (a process task's
    ``job.json``, a pod's job), it is read through this model, so a payload from a newer plait
    is refused with a message instead of misread. ``secrets`` is never serialised: its values
    reach the runtime through the platform (an environment variable of that process only).
    """

    attempt_id: str
    execution_id: str
    node_id: str
    attempt: int
    item_index: int | None = None
    task: str
    ref: dict[str, Any]
    inputs: dict[str, Any]
    blobs: str
    checkpoint_uri: str
    scratch_root: str | None = None
    dynamic: bool = False
    env: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict, repr=False, exclude=True)
    extras: dict[str, Any] = Field(default_factory=dict)
    """What a task type adds to the task's context (``current_context().rank``)."""
    discard_outputs: bool = False
    """Run the function but report no outputs (another process of the attempt reports them)."""


class Placement(WireModel):
    """Where and with what a Python attempt runs, for a platform that places work (Kubernetes).

    The identity (execution, node, attempt, tenant, task type) names and labels what the
    platform creates; the rest comes from the task's template and is absent when only the
    identity is known (re-attaching after a restart). ``secrets`` are names: the platform
    resolves them where the work runs (a Kubernetes Secret reference), never here.
    """

    execution_id: str
    node_id: str
    attempt_id: str
    project: str = "default"
    domain: str = "development"
    task_type: str = "python"
    task: str = ""
    image: str | None = None
    cpu: float | None = None
    memory: str | None = None
    gpu: int = 0
    timeout: float | None = None
    secrets: tuple[str, ...] = ()
    item_index: int | None = None
    map_size: int | None = None
    """For a map item, the map's item count: a platform may pack several items into one pod."""
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    annotations: dict[str, str] = Field(default_factory=dict)
    """The task's own placement (``@task(pod=PodOptions(...))``), over the platform's."""


class RemoteJob(WireModel):
    """A Python attempt as a pod (or any machine without the engine's files) reads it.

    Written to the blob store by the platform, read by ``python -m plait.runtime.remote``.
    ``code_uri`` is the content-addressed archive of the workflow's source tree, ``code_root``
    the folder it was packed from on the engine's machine (the payload's file paths start
    there). Secrets come by name only; their values are in the process's environment.
    """

    payload: dict[str, Any] = Field(default_factory=dict)
    items: list[dict[str, Any]] = Field(default_factory=list)
    """Several map items' payloads, run one after the other in one process (a packed pod);
    their results are written together, as ``{"items": {attempt_id: result}}``."""
    result_uri: str
    code_uri: str | None = None
    code_root: str | None = None
    secrets: tuple[str, ...] = ()


class ContainerWork(WireModel):
    """A container task's attempt, as the task type hands it to a platform that places work.

    ``argv`` is rendered already (``{{inputs.x}}`` and ``{{outputs}}`` are paths under
    ``root``, a folder the platform shares between its steps and the command); ``secret_env``
    maps an environment variable to the secret it holds, by name: never a value.
    """

    image: str
    argv: list[str]
    env: dict[str, str] = Field(default_factory=dict)
    secret_env: dict[str, str] = Field(default_factory=dict)
    root: str = "/plait"
    inputs: dict[str, dict[str, str]] = Field(default_factory=dict)
    """File and folder inputs to fetch into ``root``/inputs/NAME: their blob URI and kind."""
    outputs: dict[str, str] = Field(default_factory=dict)
    """Each output's kind: the command writes ``root``/outputs/NAME."""


class ContainerJob(WireModel):
    """A container task's attempt as its pod's plait steps read it (from the blob store).

    The pod's first step downloads ``inputs`` (file and directory inputs: blob URI and kind)
    into ``root``/inputs/NAME; the user's command runs unchanged, with ``{{inputs.x}}`` and
    ``{{outputs}}`` already rendered to paths under ``root``; the last step reads the files the
    command wrote under ``root``/outputs (one per output, by ``outputs``' kinds), stores files
    and folders in ``blobs`` and writes the attempt's result to ``result_uri``.
    """

    blobs: str
    root: str
    inputs: dict[str, dict[str, str]] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(default_factory=dict)
    result_uri: str


class ObjectKind(WireModel):
    """A kind of Kubernetes object a task type creates: ``ObjectKind(group="kubeflow.org",
    version="v1", plural="pytorchjobs", kind="PyTorchJob")``."""

    group: str
    version: str
    plural: str
    kind: str


class ObjectRequest(WireModel):
    """What a platform gives a task type to build the Kubernetes object of one attempt.

    Everything the platform's configuration decides is here, ready to put into the object's
    pod templates: the image (the task's, or the platform's default), plait's interpreter in
    it, the environment (with secrets as ``secretKeyRef`` entries: never values), where the
    attempt's job is (``job_uri``: the argument of the task type's entrypoint), resources,
    service account and placement. The platform sets the object's name, namespace, labels
    and annotations itself.
    """

    name: str
    namespace: str
    labels: dict[str, str]
    image: str
    python: str
    job_uri: str
    env: list[dict[str, Any]] = Field(default_factory=list)
    env_from: list[dict[str, Any]] = Field(default_factory=list)
    resources: dict[str, dict[str, str]] = Field(default_factory=dict)
    service_account: str | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    image_pull_secrets: list[str] = Field(default_factory=list)


class ObjectWork(WireModel):
    """A process task's attempt as a Kubernetes object: its kind, and the job its
    entrypoint reads (no secret in it: their names only, in ``secret_names``)."""

    kind: ObjectKind
    job: dict[str, Any]
    env: dict[str, str] = Field(default_factory=dict)
    max_name_length: int = 40
    """Room for what an operator appends to the object's name (``-driver``, ``-worker-12``)."""


class AttemptResult(WireModel):
    """What a Python attempt reports: ``succeeded`` with outputs (literals), or ``failed``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Literal["succeeded", "failed", "aborted"]
    outputs: dict[str, Any] | None = None
    spec: dict[str, Any] | None = None
    """A dynamic task's compiled sub-workflow."""
    message: str = ""
    traceback: str | None = None
    retryable: bool = True
    error_kind: Literal["user", "system"] = "user"
    logs: dict[str, str] = Field(default_factory=dict)
    stdout: str | None = None
    stderr: str | None = None
    rank: int | None = None
    """For a distributed attempt, the rank that reported."""


class TaskHandle(WireModel):
    """What every handle carries, whatever its task type: the platform its work runs on, and
    the schema it was written with (a handle from a newer plait is refused on re-attach).

    A task type's handle model subclasses it with its own fields; the platform's own fields
    (a local process's folder and pid, a pod's name) ride along, hence ``extra="allow"``.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    platform: str = "local"
    """Where the work runs (a handle from before platforms existed ran locally)."""


class PythonHandle(TaskHandle):
    """The ``python`` task type's handle: the job the platform runs (the attempt id)."""

    job: str


class ContainerHandle(TaskHandle):
    """The ``container`` task type's handle: the platform's command handle, and the kind of
    each output the command writes; ``job`` when a platform runs it in its image (Kubernetes)."""

    outputs: dict[str, str]
    job: str | None = None


class ProcessTaskHandle(TaskHandle):
    """A process task's handle (Spark, PyTorch, papermill): the platform's command handle and
    the folder with its ``job.json`` and ``result.json``; ``remote`` is the job id when a
    platform runs it as an object of its own (a SparkApplication on Kubernetes)."""

    job: str
    remote: str | None = None
