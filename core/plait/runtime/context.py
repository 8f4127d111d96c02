"""``plait.current_context()``: what a running task knows about itself."""

from __future__ import annotations

import contextvars
import io
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plait.model.errors import PlaitError
from plait.storage.blobs import BlobStore
from plait.types.files import set_scratch_folder


class Checkpoint:
    """Bytes or a directory that survive a failed attempt.

    Every attempt of a node (or of one map item) sees the same checkpoint: a retried attempt
    restores what an earlier attempt saved, on the local platform as on a cluster.
    """

    def __init__(self, blobs: BlobStore, uri: str) -> None:
        self._blobs = blobs
        self.uri = uri

    def save(self, data: bytes) -> None:
        """Replace the checkpoint with ``data``."""
        self._blobs.write_bytes(self.uri + "/checkpoint.bin", bytes(data))

    def restore(self) -> bytes | None:
        """The bytes an earlier attempt saved, or None."""
        target = self.uri + "/checkpoint.bin"
        return self._blobs.read_bytes(target) if self._blobs.exists(target) else None

    def save_dir(self, path: str | Path) -> None:
        """Replace the checkpoint with the contents of directory ``path``."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            tar.add(str(path), arcname=".")
        self.save(buf.getvalue())

    def restore_dir(self, path: str | Path) -> bool:
        """Unpack a saved directory into ``path``; False if there is none."""
        data = self.restore()
        if data is None:
            return False
        Path(path).mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(str(path), filter="data")
        return True


@dataclass
class TaskContext:
    """Returned by :func:`current_context` inside a running task."""

    execution_id: str
    node_id: str
    attempt_id: str
    attempt: int
    """1 for the first attempt, 2 for the first retry, and so on."""
    checkpoint: Checkpoint
    item_index: int | None = None
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    """The secrets the task asked for (``@task(secrets=[...])``), by name."""
    extras: dict[str, Any] = field(default_factory=dict)
    """What a task type adds (a SparkSession, the rank of a training process)."""
    _scratch: Path | None = None
    _scratch_root: str | None = None

    def __getattr__(self, name: str) -> Any:
        # What a task type adds is reachable as an attribute too: current_context().rank
        extras = self.__dict__.get("extras") or {}
        if name in extras:
            return extras[name]
        raise AttributeError(f"the task context has no {name!r}; it has {sorted(extras) or 'no extras'} from its task type")

    def secret(self, name: str) -> str:
        """The value of a secret the task declared with ``@task(secrets=[name])``."""
        try:
            return self.secrets[name]
        except KeyError:
            raise PlaitError(f"secret {name!r} was not declared by this task: add it to @task(secrets=[...])") from None

    @property
    def scratch(self) -> Path:
        """A private folder for this attempt, created on first use."""
        if self._scratch is None:
            if self._scratch_root:
                Path(self._scratch_root).mkdir(parents=True, exist_ok=True)
            self._scratch = Path(tempfile.mkdtemp(prefix="scratch-", dir=self._scratch_root))
        return self._scratch


_context: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar("plait_context", default=None)


def _running_scratch() -> Path | None:
    ctx = _context.get()
    return ctx.scratch if ctx is not None else None


set_scratch_folder(_running_scratch)  # a File downloaded inside a task lands in its scratch folder


def current_context() -> TaskContext:
    """The context of the task running now; an error outside a task run by plait."""
    ctx = _context.get()
    if ctx is None:
        raise PlaitError(
            "plait.current_context() is only available inside a task run by plait "
            "(`plait run`, or a workflow called as a function); a task called as plain Python has none"
        )
    return ctx
