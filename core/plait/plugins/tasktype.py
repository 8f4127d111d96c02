"""The task-type contract: what a plugin implements to run one kind of work.

A task type is an object with a ``name``, an optional pydantic ``config_model`` and four
methods, ``submit``, ``poll``, ``abort`` and ``cleanup``. The engine drives them; a plugin
never schedules, retries, caches or records anything itself. Copy
``plait/builtin/container_task.py`` to start a new one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from plait.model.errors import PlaitError
from plait.model.status import Handle, Status
from plait.plugins.platform import Platform

if TYPE_CHECKING:
    from plait.model.spec import TaskTemplate
    from plait.storage.blobs import BlobStore











@dataclass
class AttemptContext:
    """Everything a task type needs to know about the attempt it is running.

    ``attempt_id`` is unique per execution, node, map item and attempt number, and stable
    across engine restarts: derive external names (pod names, job ids) from it so that a
    second ``submit`` attaches instead of starting the work twice.
    """

    execution_id: str
    node_id: str
    attempt_id: str
    attempt: int
    inputs: dict[str, Any]
    blobs: BlobStore
    workdir: Path | str
    """This attempt's own folder on this machine (created by whoever needs it)."""
    checkpoint_uri: str
    """Where this node (or map item) keeps its checkpoint; every attempt sees the same one."""
    project: str = "default"
    domain: str = "development"
    item_index: int | None = None
    map_size: int | None = None
    """For a map item, how many items the map has (a platform may pack small items together)."""
    inline: bool = False
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    """The task's secrets, resolved by the engine; inject them, never log them."""
    notify: Callable[[], None] = field(default=lambda: None, repr=False)
    """Call (from any thread) to make the engine poll this attempt now."""
    platform: Platform = field(default_factory=lambda: _NO_PLATFORM, repr=False)
    """Where this execution's compute runs: compute task types hand their work to it."""

    def __post_init__(self) -> None:
        # Kept as given: a map item's attempt may never touch its folder, and building a Path
        # per item is measurable. ``folder`` gives it as a Path.
        self._folder: Path | None = None

    @property
    def folder(self) -> Path:
        """``workdir`` as a Path."""
        if self._folder is None:
            self._folder = Path(self.workdir)
        return self._folder

    @property
    def stdout_path(self) -> Path:
        return self.folder / "stdout.log"

    @property
    def stderr_path(self) -> Path:
        return self.folder / "stderr.log"

    def external_name(self, max_length: int = 63) -> str:
        """A DNS-1123 name derived from the attempt id, stable across restarts."""
        import hashlib

        digest = hashlib.sha256(self.attempt_id.encode()).hexdigest()[:10]
        safe = "".join(c if c.isalnum() else "-" for c in self.attempt_id.lower()).strip("-")
        return f"{safe[: max_length - 11].rstrip('-')}-{digest}"


class TaskConfig(BaseModel):
    """Base class of the objects passed as ``@task(plugin=...)``.

    A plugin's config model subclasses this and sets ``task_type`` to the name of the task
    type that runs it, so ``@task(plugin=Spark(...))`` needs no other argument.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    task_type: ClassVar[str]


class TaskType:
    """Base class of task types. Subclass it and override the four hooks.

    Hooks may block (they are called off the engine's event loop) unless ``blocking`` is
    False, which a task type may set when every hook returns in microseconds.
    """

    name: ClassVar[str]
    config_model: ClassVar[type[BaseModel] | None] = None
    blocking: ClassVar[bool] = True
    uses_python_slots: ClassVar[bool] = False
    """True when the attempts run through the platform's Python slots (``submit_python``):
    a map then keeps about twice the platform's ``python_slots()`` items in flight."""

    def check(self, task: TaskTemplate) -> None:
        """Reject a task this type cannot run, at compile time (raise CompileError saying why).

        Called after ``config_model`` has validated the task's configuration; the default
        accepts everything.
        """

    def pools(self, task: TaskTemplate, config: BaseModel | None) -> dict[str, int]:
        """Return the rate-limited pools one attempt of ``task`` holds, with token counts.

        Asked once per task in an execution, off the event loop when ``blocking``, so it may
        look something up (an account id); a PlaitError it raises fails the task with its message.
        """
        return {}

    def submit(self, ctx: AttemptContext, task: TaskTemplate) -> Handle:
        """Start the work; idempotent for ``ctx.attempt_id``. Return a JSON-able handle."""
        raise NotImplementedError

    def poll(self, ctx: AttemptContext, handle: Handle) -> Status:
        """Report the attempt's phase; outputs when it succeeded."""
        raise NotImplementedError

    def abort(self, ctx: AttemptContext, handle: Handle) -> None:
        """Stop the work; not an error if it already ended."""
        raise NotImplementedError

    def cleanup(self, ctx: AttemptContext, handle: Handle) -> None:
        """Release what submit created; called once the attempt ends, whatever the ending."""
        raise NotImplementedError

    def submit_chunk(self, ctxs: list[AttemptContext], task: TaskTemplate,
                     done: Callable[[int, Status], None]) -> list[Handle] | None:
        """Start the attempts of several map items of ``task`` at once, for a map of quick
        items: one handle per context, and ``done(k, status)`` called once as the ``k``-th
        attempt ends (from the engine's thread; possibly before this returns). Return None
        (the default) to have the engine submit and poll each attempt on its own.

        The engine asks only a task type that is not ``blocking``, for the first attempts of
        items of a map without a ``concurrency`` cap, in an execution without
        ``max_parallelism``, of a task without a timeout, cache, pools, secrets, datasets to
        record or a dynamic body; ``abort`` and ``cleanup`` still take one attempt's context
        and handle.
        """
        return None

    def capacity(self, inline: bool) -> int | None:
        """How many attempts can run at once here (a worker pool's size), or None if unknown.

        The engine keeps about twice this many map items in flight, so the workers never idle
        and nothing piles up in a queue. None means a service that queues work itself.
        """
        return None

    def close(self) -> None:
        """Release process-wide resources (worker pools, clients); called when an engine stops."""




class _NoPlatform(Platform):
    name = "none"

    def __getattribute__(self, attr: str) -> Any:
        if attr in ("name", "close", "__class__"):
            return object.__getattribute__(self, attr)
        raise PlaitError("this attempt has no platform: the engine sets ctx.platform (a test builds one with "
                         "plait.testing.make_context)")


_NO_PLATFORM: Platform = _NoPlatform()
