"""The lifecycle suite every task type must pass.

Mix :class:`TaskTypeLifecycleTests` into a pytest test class and implement ``case()``;
pytest then runs one test per behaviour of the contract in ``plait/tasktype.py``:

* submit, then poll until the attempt succeeds with the expected outputs;
* abort twice and clean up twice, on a running attempt and on a finished one, without error
  (a finished attempt stays succeeded);
* submit again with the same attempt id: the work is attached to, not started twice;
* submit again from a fresh task-type instance (an engine restart): attached to as well,
  or, for a task type whose work cannot outlive its engine, reported as a retryable
  system failure rather than silently lost;
* after every one of these, no file under the test's folders (its ``tmp_path``, which holds
  the blob store and the attempts' folders, and ``$PLAIT_HOME``) holds a secret's value.

"Not started twice" needs time to be true: after the second submit the suite watches
``starts`` for as long as the case says a start can take (:attr:`LifecycleCase.start_timeout`,
or twice what the first start took if that is longer), so a task type that starts a JVM or a
kernel on every submit is caught even though its start shows seconds later.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plait.model.spec import TaskTemplate
from plait.model.status import ErrorKind, Handle, Phase, Status
from plait.plugins.platform import Platform
from plait.plugins.registry import load_registry
from plait.plugins.tasktype import AttemptContext, TaskType
from plait.storage.blobs import BlobStore
from plait.testing.secrets import regular_files


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
    start_timeout: float = 3.0
    """The longest the slow task's start may take to show in ``starts`` once ``submit`` has
    returned, on a loaded machine. After a second submit the attach tests watch ``starts``
    this long (or twice as long as the first start took, if more) before concluding that the
    work was not started again, so it must cover a JVM's, torchrun's or a kernel's start."""
    attaches_after_restart: bool = True
    timeout: float = 60.0
    inline: bool = False
    secrets: dict[str, str] = field(default_factory=dict)
    """The resolved secrets each attempt gets (a service's password, say). A probe secret
    with a recognisable value is added to every case: no file may ever hold any of them."""
    extra: dict[str, Any] = field(default_factory=dict)
    platform: str | Platform = "local"
    """Where the attempts run: a registered platform's name, or a platform object (a
    ``KubernetesPlatform`` pointed at a test cluster)."""
    blob_url: str | None = None
    """The blob store the attempts share (default: a folder under the test's ``tmp_path``)."""

    def __post_init__(self) -> None:
        self.secrets = {PROBE_SECRET: f"s3cr3t-{uuid.uuid4().hex}", **self.secrets}


PROBE_SECRET = "lifecycle_probe"
"""The secret every case's attempts get, whether or not the task uses it."""


def make_context(tmp: Path, attempt_id: str, inputs: dict[str, Any], *, inline: bool = False,
                 secrets: dict[str, str] | None = None, platform: str | Platform = "local",
                 blob_url: str | None = None) -> AttemptContext:
    """An attempt context backed by a blob store (``blob_url``, or a folder under ``tmp``) and a
    working folder under ``tmp``, on ``platform`` (prepared for that blob store)."""
    blobs = BlobStore(blob_url or str(tmp / "blobs"))
    safe = attempt_id.replace("/", "_")
    where = load_registry().platform(platform) if isinstance(platform, str) else platform
    where.prepare(blobs.url)
    return AttemptContext(
        execution_id="lifecycle", node_id="n", attempt_id=attempt_id, attempt=1, inputs=inputs,
        blobs=blobs, workdir=tmp / "runs" / safe, checkpoint_uri=blobs.uri("checkpoints", safe),
        inline=inline, secrets=dict(secrets or {}), platform=where,
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
    from plait.platforms.local.process import PROCESS_MARKER

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


def processes_outliving(workdir: str, command_contains: str = "", grace: float = 5.0) -> list[int]:
    """The processes of ``workdir``'s command still alive ``grace`` seconds after an abort.

    SIGKILL is delivered at once, but on a loaded machine a killed process can take a moment
    to be gone from /proc; work that was not killed at all (a minute-long task) is still there.
    """
    deadline = time.monotonic() + grace
    while (left := marked_processes(workdir, command_contains)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


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
    return make_context(tmp, attempt_id, inputs, inline=case.inline, secrets=case.secrets,
                        platform=case.platform, blob_url=case.blob_url)


def wait_for_start(case: LifecycleCase, count: int = 1) -> None:
    timeout = max(case.timeout, case.start_timeout)
    deadline = time.monotonic() + timeout
    while case.starts() < count:
        assert time.monotonic() < deadline, f"the slow task did not start within {timeout}s"
        time.sleep(0.05)


def submit_and_wait_for_start(task_type: TaskType, ctx: AttemptContext, case: LifecycleCase) -> tuple[Handle, float]:
    """Submit the slow task and wait until its work has begun; return the handle and how long that took."""
    began = time.monotonic()
    handle = task_type.submit(ctx, case.slow)
    wait_for_start(case)
    return handle, time.monotonic() - began


def assert_started_once(case: LifecycleCase, since: float, first_start: float, message: str) -> None:
    """Watch ``starts`` from ``since`` for as long as a start can take; fail on a second one.

    A duplicate start would show as late as the first one did, on a machine as busy: the
    window is the case's ``start_timeout``, or twice the first start's time if that is longer.
    """
    deadline = since + max(case.start_timeout, 2 * first_start)
    while True:
        count = case.starts()
        assert count == 1, f"{message} (starts: {count})"
        if time.monotonic() >= deadline:
            return
        time.sleep(0.1)


def files_holding(values: Iterable[str], roots: Iterable[Path]) -> list[str]:
    """The files under ``roots`` whose bytes contain one of ``values`` (links are not followed)."""
    needles = [v.encode() for v in values if v]
    return [path for path, data in regular_files(roots) if any(needle in data for needle in needles)]


def assert_no_secret_on_disk(case: LifecycleCase, tmp: Path) -> None:
    """No file under the test's folder (blob store, attempts' folders) or ``$PLAIT_HOME`` holds a secret."""
    roots = [tmp]
    home = os.environ.get("PLAIT_HOME")
    if home and not Path(home).resolve().is_relative_to(tmp.resolve()):
        roots.append(Path(home))
    leaked = files_holding(case.secrets.values(), roots)
    assert not leaked, f"a secret's value was written to {', '.join(leaked)}"


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
        assert_no_secret_on_disk(case, tmp_path)

    def test_abort_twice_and_cleanup_twice_after_success(self, tmp_path: Path) -> None:
        case = self.case(tmp_path)
        tt = self._new(case)
        ctx = _context(case, tmp_path, "lifecycle/quick/2", case.quick_inputs)
        handle = tt.submit(ctx, case.quick)
        status = poll_until_done(tt, ctx, handle, case.timeout)
        assert status.phase == Phase.SUCCEEDED, status.message
        tt.abort(ctx, handle)
        tt.abort(ctx, handle)
        after = tt.poll(ctx, handle)
        assert after.phase == Phase.SUCCEEDED, f"aborting a finished attempt changed it to {after.phase.value}"
        tt.cleanup(ctx, handle)
        tt.cleanup(ctx, handle)
        assert_no_secret_on_disk(case, tmp_path)

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
        assert_no_secret_on_disk(case, tmp_path)

    def test_submit_again_attaches_instead_of_starting_twice(self, tmp_path: Path) -> None:
        case = self.case(tmp_path)
        tt = self._new(case)
        ctx = _context(case, tmp_path, "lifecycle/slow/2", case.slow_inputs)
        first, first_start = submit_and_wait_for_start(tt, ctx, case)
        again = time.monotonic()
        second = tt.submit(_context(case, tmp_path, "lifecycle/slow/2", case.slow_inputs), case.slow)
        assert_started_once(case, again, first_start, "submitting the same attempt id twice started the work twice")
        assert tt.poll(ctx, second).phase == tt.poll(ctx, first).phase == Phase.RUNNING
        tt.abort(ctx, first)
        poll_until_done(tt, ctx, first, case.timeout)
        tt.cleanup(ctx, first)
        assert_no_secret_on_disk(case, tmp_path)

    def test_submit_after_restart(self, tmp_path: Path) -> None:
        case = self.case(tmp_path)
        tt = self._new(case)
        ctx = _context(case, tmp_path, "lifecycle/slow/3", case.slow_inputs)
        handle, first_start = submit_and_wait_for_start(tt, ctx, case)
        restarted = self._new(case)
        if case.attaches_after_restart:
            resubmitted = time.monotonic()
            again = restarted.submit(_context(case, tmp_path, "lifecycle/slow/3", case.slow_inputs), case.slow)
            assert_started_once(case, resubmitted, first_start,
                                "a restarted engine's submit started the work a second time")
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
        assert_no_secret_on_disk(case, tmp_path)
