"""The lifecycle suite every task type must pass.

Mix :class:`TaskTypeLifecycleTests` into a pytest test class and implement ``case()``;
pytest then runs one test per behaviour of the contract in ``plait/tasktype.py``:

* submit, then poll until the attempt succeeds with the expected outputs;
* abort twice and clean up twice, on a running attempt and on a finished one, without error;
* submit again with the same attempt id: the work is attached to, not started twice;
* submit again from a fresh task-type instance (an engine restart): attached to as well,
  or, for a task type whose work cannot outlive its engine, reported as a retryable
  system failure rather than silently lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plait.blobs import BlobStore
from plait.spec import TaskTemplate
from plait.tasktype import AttemptContext, ErrorKind, Handle, Phase, Status, TaskType


@dataclass
class LifecycleCase:
    """What the suite needs to exercise one task type."""

    new_task_type: Callable[[], TaskType]
    """Returns a fresh instance; a second call stands for an engine that restarted."""
    quick: TaskTemplate
    quick_inputs: dict[str, Any]
    expected_outputs: dict[str, Any]
    slow: TaskTemplate
    """A task that runs for several seconds unless aborted."""
    slow_inputs: dict[str, Any]
    starts: Callable[[], int]
    """How many times the slow task's work has begun so far."""
    attaches_after_restart: bool = True
    timeout: float = 60.0
    inline: bool = False
    secrets: dict[str, str] = field(default_factory=dict)
    """The resolved secrets each attempt gets (a service's password, say)."""
    extra: dict[str, Any] = field(default_factory=dict)


def make_context(tmp: Path, attempt_id: str, inputs: dict[str, Any], *, inline: bool = False,
                 secrets: dict[str, str] | None = None) -> AttemptContext:
    """An attempt context backed by a blob store and working folder under ``tmp``."""
    blobs = BlobStore(str(tmp / "blobs"))
    safe = attempt_id.replace("/", "_")
    return AttemptContext(
        execution_id="lifecycle", node_id="n", attempt_id=attempt_id, attempt=1, inputs=inputs,
        blobs=blobs, workdir=tmp / "runs" / safe, checkpoint_uri=blobs.uri("checkpoints", safe),
        inline=inline, secrets=dict(secrets or {}),
    )


def alive(pid: int) -> bool:
    """Whether process ``pid`` is running (a zombie waiting to be reaped is not)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


def marked_processes(workdir: str, command_contains: str = "") -> list[int]:
    """Live processes started for the LocalProcess command in ``workdir`` (and their descendants).

    A task type's test asserts this is empty after abort: no kernel, rank or JVM left behind.
    """
    from plait.local import PROCESS_MARKER

    needle = f"{PROCESS_MARKER}={workdir}".encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes():
                continue
            if command_contains and command_contains not in (entry / "cmdline").read_text():
                continue
        except OSError:
            continue
        if alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def poll_until_done(task_type: TaskType, ctx: AttemptContext, handle: Handle, timeout: float) -> Status:
    """Poll until a terminal phase; fail the test if it takes longer than ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        status = task_type.poll(ctx, handle)
        if status.phase.terminal:
            return status
        assert time.monotonic() < deadline, f"{task_type.name}: still {status.phase.value} after {timeout}s"
        time.sleep(0.05)


def _context(case: LifecycleCase, tmp: Path, attempt_id: str, inputs: dict[str, Any]) -> AttemptContext:
    return make_context(tmp, attempt_id, inputs, inline=case.inline, secrets=case.secrets)


def wait_for_start(case: LifecycleCase, count: int = 1, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while case.starts() < count:
        assert time.monotonic() < deadline, f"the slow task did not start within {timeout}s"
        time.sleep(0.05)


class TaskTypeLifecycleTests:
    """The contract's behaviours as tests. Subclass and implement :meth:`case`."""

    def case(self, tmp_path: Path) -> LifecycleCase:
        raise NotImplementedError

    def teardown_method(self) -> None:
        for task_type in getattr(self, "_opened", []):
            task_type.close()
        self._opened: list[TaskType] = []

    def _new(self, case: LifecycleCase) -> TaskType:
        task_type = case.new_task_type()
        self.__dict__.setdefault("_opened", []).append(task_type)
        return task_type

    def test_submit_then_poll_to_success(self, tmp_path: Path) -> None:
        case = self.case(tmp_path)
        tt = self._new(case)
        ctx = _context(case, tmp_path, "lifecycle/quick/1", case.quick_inputs)
        handle = tt.submit(ctx, case.quick)
        status = poll_until_done(tt, ctx, handle, case.timeout)
        assert status.phase == Phase.SUCCEEDED, status.message
        assert status.outputs == case.expected_outputs
        tt.cleanup(ctx, handle)

    def test_abort_twice_and_cleanup_twice_after_success(self, tmp_path: Path) -> None:
        case = self.case(tmp_path)
        tt = self._new(case)
        ctx = _context(case, tmp_path, "lifecycle/quick/2", case.quick_inputs)
        handle = tt.submit(ctx, case.quick)
        poll_until_done(tt, ctx, handle, case.timeout)
        tt.abort(ctx, handle)
        tt.abort(ctx, handle)
        tt.cleanup(ctx, handle)
        tt.cleanup(ctx, handle)

    def test_abort_stops_running_work(self, tmp_path: Path) -> None:
        case = self.case(tmp_path)
        tt = self._new(case)
        ctx = _context(case, tmp_path, "lifecycle/slow/1", case.slow_inputs)
        handle = tt.submit(ctx, case.slow)
        wait_for_start(case)
        started = time.monotonic()
        tt.abort(ctx, handle)
        tt.abort(ctx, handle)
        status = poll_until_done(tt, ctx, handle, case.timeout)
        assert status.phase in (Phase.ABORTED, Phase.FAILED), status
        assert time.monotonic() - started < case.timeout / 2, "abort did not stop the work promptly"
        tt.cleanup(ctx, handle)
        tt.cleanup(ctx, handle)

    def test_submit_again_attaches_instead_of_starting_twice(self, tmp_path: Path) -> None:
        case = self.case(tmp_path)
        tt = self._new(case)
        ctx = _context(case, tmp_path, "lifecycle/slow/2", case.slow_inputs)
        first = tt.submit(ctx, case.slow)
        wait_for_start(case)
        second = tt.submit(_context(case, tmp_path, "lifecycle/slow/2", case.slow_inputs), case.slow)
        time.sleep(0.5)
        assert case.starts() == 1, "submitting the same attempt id twice started the work twice"
        assert tt.poll(ctx, second).phase == tt.poll(ctx, first).phase
        tt.abort(ctx, first)
        poll_until_done(tt, ctx, first, case.timeout)
        tt.cleanup(ctx, first)

    def test_submit_after_restart(self, tmp_path: Path) -> None:
        case = self.case(tmp_path)
        tt = self._new(case)
        ctx = _context(case, tmp_path, "lifecycle/slow/3", case.slow_inputs)
        handle = tt.submit(ctx, case.slow)
        wait_for_start(case)
        restarted = self._new(case)
        if case.attaches_after_restart:
            again = restarted.submit(_context(case, tmp_path, "lifecycle/slow/3", case.slow_inputs), case.slow)
            time.sleep(0.5)
            assert case.starts() == 1, "a restarted engine's submit started the work a second time"
            assert restarted.poll(ctx, again).phase == Phase.RUNNING
            restarted.abort(ctx, again)
            assert poll_until_done(restarted, ctx, again, case.timeout).phase in (Phase.ABORTED, Phase.FAILED)
            restarted.cleanup(ctx, again)
        else:
            status = restarted.poll(ctx, handle)
            assert status.phase == Phase.FAILED and status.retryable and status.error_kind == ErrorKind.SYSTEM, (
                "a task type whose work dies with its engine must report it as a retryable system failure")
        tt.abort(ctx, handle)
        tt.cleanup(ctx, handle)
