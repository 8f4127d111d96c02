"""The engine: runs a compiled workflow as an asyncio program, recording every change.

Scheduling is driven by a ready queue: each node counts the upstream nodes it still waits
for, and becomes runnable when the last one finishes; nothing rescans the graph. Every
state change is an event appended to the store and applied to the in-memory projection
(:class:`plait.store.ExecutionState`), so replaying the stored events rebuilds the same
state.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import posixpath
import random
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plait.engine.graph import NodeFailed, _Graph
from plait.engine.prior import _Prior
from plait.engine.services import EngineServices, build_services
from plait.model.errors import PlaitError
from plait.model.events import Event, EventKind
from plait.model.settings import Settings
from plait.model.spec import TaskTemplate, WorkflowSpec
from plait.model.status import ErrorKind, Handle, Phase, Status
from plait.model.wire import TaskHandle, WireVersionError
from plait.plugins.registry import Registry
from plait.plugins.tasktype import AttemptContext, TaskType
from plait.runtime.code import unpack
from plait.storage.blobs import BlobStore
from plait.storage.events import ExecutionState
from plait.types.engine import ValueIO, offload

Listener = Callable[[Event, ExecutionState], None]


def build_engine(settings: Settings | None = None, registry: Registry | None = None) -> Engine:
    """An engine wired from configuration (see :func:`plait.engine.services.build_services`)."""
    return Engine(build_services(settings, registry))




@dataclass
class ExecutionResult:
    """How an execution ended: its phase, output literals, and the failing node if any."""

    execution_id: str
    phase: Phase
    outputs: dict[str, Any] | None
    error: str | None
    failed_node: str | None
    state: ExecutionState


@dataclass
class RunOptions:
    """Choices for one execution."""

    inline: bool = False
    fail_fast: bool = True
    overwrite_cache: bool = False
    project: str = "default"
    domain: str = "development"
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    max_poll_interval: float = 1.0
    execution_id: str | None = None
    priority: int = 0
    """Within its tenant, an execution with a higher priority gets pool tokens first."""
    platform: str = "local"
    """Where compute task types run (a registered platform's name); recorded in every handle."""
    code: dict[str, Any] | None = None
    """A registered workflow's code archive (a :class:`~plait.model.registered.CodeRef`): its
    tasks run from it, unpacked, instead of from the files they were registered from."""
    recover_from: str | None = None
    """A failed execution whose succeeded nodes this one reuses instead of running (recover)."""
    max_parallelism: int | None = None
    """At most this many task attempts (map items included) of the execution run at once
    (a launch plan's); None: as many as the graph and the platform allow."""


POLL_ERRORS_TOLERATED = 3
"""Consecutive exceptions from a task type's poll before the engine gives the attempt up."""


@dataclass
class _Attempt:
    """Bookkeeping for one running attempt, so an abort can find it."""

    task_type: TaskType
    ctx: AttemptContext
    handle: Handle | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class Engine:
    """Runs workflows against the services it is given (see :func:`build_engine`)."""

    def __init__(self, services: EngineServices) -> None:
        self.services = services
        self.settings = services.settings
        self.store = services.store
        self.blobs = services.blobs
        self.registry = services.registry
        self.tokens = services.tokens
        self.lineage = services.lineage
        self.live: dict[str, _Execution] = {}
        """The executions running on this engine now, by id (several may share one event loop)."""
        self.aborting: dict[str, str] = {}
        """Why each execution being aborted is (see :meth:`abort`), by id."""

    def close(self) -> None:
        self.registry.close()
        self.tokens.close()
        self.lineage.close()
        self.store.close()

    async def run(self, spec: WorkflowSpec, inputs: dict[str, Any], options: RunOptions | None = None,
                  listener: Listener | None = None, queued: bool = False) -> ExecutionResult:
        """Run ``spec`` with input literals; returns when the execution ends (or is cancelled).

        ``queued``: the execution (``options.execution_id``) was already created, in phase
        ``queued``, by :class:`plait.storage.queue.ExecutionQueue`, and an engine claimed it.
        """
        return await _Execution(self, spec, options or RunOptions(), listener).run(inputs, queued=queued)

    def abort(self, execution_id: str, reason: str) -> bool:
        """Record why a live execution is ending; cancelling its task next aborts it (its
        running attempts are aborted and cleaned up, its tokens released). Whether it is live."""
        self.aborting[execution_id] = reason
        return execution_id in self.live

    def detach(self, execution_id: str) -> None:
        """Stop recording anything for a live execution, as if this engine had died: another
        engine now owns it. Cancel its task next; nothing is aborted or marked aborted, and
        work it started is left for the new owner to re-attach to."""
        execution = self.live.get(execution_id)
        if execution is not None:
            execution.detached = True

    async def resume(self, execution_id: str, options: RunOptions | None = None,
                     listener: Listener | None = None) -> ExecutionResult:
        """Carry on an execution that stopped (a crash, a failure, Ctrl-C) from its events.

        Nodes and map items that succeeded keep their outputs; an attempt that was still
        running is polled through its stored handle, so work that outlived the old engine is
        attached to, not started again; everything else runs with fresh attempt numbers.
        """
        row = self.store.execution(execution_id)
        spec = self.store.spec(row["version"])
        events = list(self.store.events(row["id"]))
        options = options or RunOptions()
        options.execution_id, options.project, options.domain = row["id"], row["project"], row["domain"]
        started = next((e for e in events if e.kind == "execution" and e.phase == "running"), None)
        options.platform = (started.data.get("platform") if started else None) or "local"
        if started is not None:  # how it was started: from a registered archive, recovering another
            options.code = options.code or started.data.get("code")
            options.recover_from = options.recover_from or started.data.get("recover_from")
            options.max_parallelism = options.max_parallelism or started.data.get("max_parallelism")
        prior = _Prior.of(events)
        if options.recover_from:  # what this run has not reached yet still comes from the failed one
            recovered = _Prior.recovering(options.recover_from, list(self.store.events(options.recover_from)))
            prior.node_outputs = {**recovered.node_outputs, **prior.node_outputs}
            prior.item_outputs = {**recovered.item_outputs, **prior.item_outputs}
            prior.recovered_from = options.recover_from
        execution = _Execution(self, spec, options, listener, prior=prior)
        execution.run_number = max((e.run for e in events), default=0) + 1
        for event in events:
            execution.state.apply(event)
        return await execution.run(execution.state.inputs, resuming=True)






def new_execution_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-", time.gmtime()) + uuid.uuid4().hex[:6]


class _Execution:
    def __init__(self, engine: Engine, spec: WorkflowSpec, options: RunOptions, listener: Listener | None,
                 prior: _Prior | None = None) -> None:
        self.engine = engine
        if prior is None and options.recover_from:
            prior = _Prior.recovering(options.recover_from, list(engine.store.events(options.recover_from)))
        self.prior = prior or _Prior()
        self.run_number = 0
        self.platform = engine.registry.platform(options.platform)
        if options.code:
            spec = run_from_archive(spec, options.code, Path(engine.settings.home) / "code",
                                    own_module_names=not self.platform.places_work)
        self.spec = spec
        self.options = options
        self.listener = listener
        self.id = options.execution_id or new_execution_id()
        self.platform.prepare(engine.blobs.url)  # a platform that cannot run it says so before anything starts
        self.state = ExecutionState(self.id)
        self.store = engine.store
        self.blobs = engine.blobs
        self.io = ValueIO(self.blobs)
        self.running: dict[str, _Attempt] = {}
        self.map_sizes: dict[str, int] = {}
        """Each running map node's item count, by path: its items' attempts are told it."""
        self.pools: dict[int, tuple[TaskTemplate, asyncio.Future[dict[str, int]]]] = {}
        """Each template's pools, by its id (the template is kept, so the id stays its own):
        asked once, not per map item."""
        self.workdir = str(Path(engine.settings.home) / "runs" / self.id)
        self.checkpoints = self.blobs.uri("checkpoints", self.id)
        self.detached = False
        """Set by :meth:`Engine.detach`: this engine no longer owns the execution."""
        self.parallelism = asyncio.Semaphore(options.max_parallelism) if options.max_parallelism else None

    def emit(self, kind: EventKind, entity: str, phase: Phase, data: dict[str, Any] | None = None) -> None:
        if self.detached:
            return
        event = Event(self.id, kind, entity, phase, data or {}, time.time(), self.run_number)
        self.store.append(event)
        self.state.apply(event)
        if self.listener is not None:
            self.listener(event, self.state)

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            try:
                self.store.flush()
                self.engine.lineage.flush()
            except Exception as exc:  # the events stay buffered; the next flush tries again
                print(f"plait: writing events to {self.store.shown_url} failed, will retry: {exc}", file=sys.stderr)

    async def run(self, inputs: dict[str, Any], resuming: bool = False, queued: bool = False) -> ExecutionResult:
        spec = self.spec
        inputs = {**spec.defaults, **inputs}
        if resuming or queued:
            self.store.set_execution_phase(self.id, "running")
        else:
            self.store.create_execution(self.id, spec, self.options.project, self.options.domain)
        self.emit("execution", "", Phase.RUNNING, {"workflow": spec.name, "version": spec.version, "inputs": inputs,
                                               "project": self.options.project, "domain": self.options.domain,
                                               "platform": self.platform.name, **self._origin()})
        self.store.flush()
        flusher = asyncio.create_task(self._flush_periodically())
        phase, outputs, error, failed = Phase.SUCCEEDED, None, None, None
        self.engine.live[self.id] = self
        try:
            outputs = await _Graph(self, spec, "", inputs).run()
            outputs = {k: offload(v, self.io) for k, v in outputs.items()}
        except NodeFailed as exc:
            phase, error, failed = Phase.FAILED, exc.message, exc.node
        except asyncio.CancelledError:
            phase, error = Phase.ABORTED, self.engine.aborting.pop(self.id, None) or "aborted by the user"
        except Exception as exc:  # the store or blob store failed outside any node
            phase, error = Phase.FAILED, f"engine error: {type(exc).__name__}: {exc}"
        finally:
            flusher.cancel()
            self.engine.live.pop(self.id, None)
            if not self.engine.live:  # the Redis renewer serves every execution on this loop
                self.engine.tokens.detach()
        if self.detached:  # another engine owns it now: record nothing more
            return ExecutionResult(self.id, Phase.ABORTED, None, "detached: another engine owns it", None, self.state)
        if phase != Phase.SUCCEEDED:  # whatever an attempt left behind on the platform goes now
            try:
                await asyncio.to_thread(self.platform.execution_ended, self.id, self.options.project,
                                        self.options.domain, phase.value)
            except Exception as exc:
                print(f"plait: sweeping up execution {self.id} on {self.platform.name} failed: {exc}",
                      file=sys.stderr)
        data: dict[str, Any] = {"outputs": outputs} if phase == Phase.SUCCEEDED else {"error": error, "failed_node": failed}
        self.emit("execution", "", phase, data)
        self.store.flush()
        self.engine.lineage.flush()
        self.store.set_execution_phase(self.id, phase.value)
        return ExecutionResult(self.id, phase, outputs, error, failed, self.state)

    def _origin(self) -> dict[str, Any]:
        """What a resume must know of how this execution was started (see :meth:`Engine.resume`)."""
        found: dict[str, Any] = {}
        if self.options.code:
            found["code"] = self.options.code
        if self.options.recover_from:
            found["recover_from"] = self.options.recover_from
        if self.options.max_parallelism:
            found["max_parallelism"] = self.options.max_parallelism
        return found

    # -- attempts --------------------------------------------------------------------------

    async def call(self, task_type: TaskType, hook: str, *args: Any) -> Any:
        fn = getattr(task_type, hook)
        if task_type.blocking:
            return await asyncio.to_thread(fn, *args)
        return fn(*args)

    async def run_task(self, path: str, template: TaskTemplate, inputs: dict[str, Any],
                       index: int | None = None, first: Status | None = None) -> dict[str, Any]:
        """Run attempts of ``template`` until one succeeds or the retry budgets are spent
        (holding one of the execution's ``max_parallelism`` slots meanwhile, if it has any).
        ``first``: how attempt 1 ended, run already in a chunk (see :meth:`run_chunk`)."""
        if self.parallelism is None:
            return await self._run_task(path, template, inputs, index, first)
        async with self.parallelism:
            return await self._run_task(path, template, inputs, index, first)

    async def _run_task(self, path: str, template: TaskTemplate, inputs: dict[str, Any],
                        index: int | None, first: Status | None) -> dict[str, Any]:
        task_type = self.engine.registry.task_type(template.type, needed_by=template.name)
        user_failures = system_failures = 0
        number = self.prior.attempts.get((path, index), 0)
        reattach = self.prior.open.pop((path, index), None)
        status = first  # attempt 1 ended in a chunk: its ending counts as any attempt's does
        if first is not None:
            number = 1
        while True:
            if status is None:
                if reattach is not None:
                    number, handle = reattach
                    reattach = None
                    try:  # written by another plait: one too new to read is refused, not misread
                        TaskHandle.model_validate(handle)
                    except (WireVersionError, ValueError) as exc:
                        raise NodeFailed(path, f"cannot re-attach attempt {number}: {exc}") from None
                else:
                    number, handle = number + 1, None
                status = await self.engine.lineage.recording(
                    self, path, template, inputs, number, index,
                    self.run_attempt(path, template, task_type, inputs, number, index, handle))
            if status.phase == Phase.SUCCEEDED:
                return status.outputs or {}
            if status.phase == Phase.ABORTED:
                raise NodeFailed(path, status.message or "aborted")
            if status.error_kind == ErrorKind.SYSTEM:
                system_failures += 1
                exhausted = system_failures > template.system_retries
            else:
                user_failures += 1
                exhausted = user_failures > template.retries
            if exhausted or not status.retryable:
                why = "" if status.retryable else " (not retryable)"
                raise NodeFailed(path, f"attempt {number} {status.phase.value}{why}: {status.message}")
            await asyncio.sleep(self.backoff(user_failures + system_failures))
            status = None

    def _resolve_secrets(self, template: TaskTemplate, ctx: AttemptContext) -> str | None:
        """Fill ``ctx.secrets``; return an error naming a missing secret and where to put it."""
        for name in template.secrets:
            value = self.engine.settings.secret(name)
            if value is None:
                key = "PLAIT_SECRET_" + "".join(c if c.isalnum() else "_" for c in name).upper()
                return (f"task {template.name} needs secret {name!r}, which is not set: export {key}=... "
                        f"or write it to {self.engine.settings.home / 'secrets' / name}")
            ctx.secrets[name] = value
        return None

    def backoff(self, failures: int) -> float:
        delay = min(self.options.backoff_max, self.options.backoff_base * 2 ** (failures - 1))
        return float(delay * random.uniform(0.5, 1.0))

    def _context(self, path: str, inputs: dict[str, Any], number: int, index: int | None) -> AttemptContext:
        item = "" if index is None else f"[{index}]"
        return AttemptContext(
            execution_id=self.id, node_id=path, attempt_id=f"{self.id}/{path}{item}/{number}", attempt=number,
            inputs=inputs, blobs=self.blobs, workdir=f"{self.workdir}/{path}/{'' if index is None else index}/{number}",
            checkpoint_uri=f"{self.checkpoints}/{path}{item}",
            project=self.options.project, domain=self.options.domain, item_index=index,
            inline=self.options.inline, platform=self.platform,
            map_size=None if index is None else self.map_sizes.get(path),
        )

    async def run_chunk(self, path: str, template: TaskTemplate, task_type: TaskType,
                        items: list[tuple[int, dict[str, Any]]]) -> list[Status] | None:
        """Run attempt 1 of several map items of ``path`` as one chunk (see
        :meth:`TaskType.submit_chunk`), recording each item's start and end as an attempt run
        alone would (cancelled, an item whose result had come in ends as it did, the others are
        aborted); how each ended, in order. None if the task type runs them one by one.

        The caller checked that nothing an attempt run alone does is left out: no timeout,
        cache, pools, secrets, datasets or ``max_parallelism``; retries go through :meth:`run_task`.
        """
        ctxs = [self._context(path, inputs, 1, index) for index, inputs in items]
        statuses: list[Status | None] = [None] * len(ctxs)
        ended: list[int] = []
        wake = asyncio.Event()

        def done(k: int, status: Status) -> None:
            statuses[k] = status
            ended.append(k)
            wake.set()

        try:
            handles = task_type.submit_chunk(ctxs, template, done)
        except Exception as exc:  # as submit failing: each item's attempt 1 fails, and is retried
            message = f"task type {template.type!r} failed in submit: {type(exc).__name__}: {exc}"
            handles = [{} for _ in ctxs]
            for k in range(len(ctxs)):
                if statuses[k] is None:
                    done(k, Status.failed(message, error_kind=ErrorKind.SYSTEM))
        if handles is None:
            return None
        bases = [{"node": path, "index": index, "attempt": 1} for index, _ in items]
        for ctx, handle, base in zip(ctxs, handles, bases):
            if handle:
                self.emit("item", _entity(ctx), Phase.RUNNING, {**base, "handle": self._on_platform(handle)})

        def record_endings() -> None:
            for k in ended:
                status = statuses[k]
                assert status is not None
                if handles[k]:
                    try:
                        task_type.cleanup(ctxs[k], handles[k])
                    except Exception as exc:
                        self._cleanup_failed(ctxs[k], exc)
                self.emit("item", _entity(ctxs[k]), status.phase, _ending(bases[k], status))
            ended.clear()

        left = len(ctxs)
        try:
            while left:
                if not ended:
                    wake.clear()
                    await wake.wait()
                left -= len(ended)
                record_endings()
        except asyncio.CancelledError:
            record_endings()  # results that came in before the cancel are how those items ended
            for k, status in enumerate(statuses):
                if status is None and handles[k]:
                    await self._stop(_Attempt(task_type, ctxs[k], handles[k]), "item", bases[k], Phase.ABORTED,
                                     "aborted")
            raise
        return [status for status in statuses if status is not None]

    async def run_attempt(self, path: str, template: TaskTemplate, task_type: TaskType,
                          inputs: dict[str, Any], number: int, index: int | None,
                          handle: Handle | None = None) -> Status:
        """Run one attempt to its end; with ``handle``, attach to one an earlier engine started."""
        ctx = self._context(path, inputs, number, index)
        entity = _entity(ctx)
        kind: EventKind = "attempt" if index is None else "item"
        base = {"node": path, "attempt": number} if index is None else {"node": path, "index": index, "attempt": number}
        if template.secrets and not self.platform.places_work:  # else resolved where the work runs
            missing = self._resolve_secrets(template, ctx)
            if missing:
                return await self._give_up(ctx, task_type, handle, kind, entity, base, missing, ErrorKind.USER)
        try:
            pools = await self._pools(task_type, template)
        except Exception as exc:  # a task type that must look its pool up (an account id) and cannot
            message = f"task type {template.type!r} could not name its pools: {exc}"
            kind_of = ErrorKind.USER if isinstance(exc, PlaitError) else ErrorKind.SYSTEM
            return await self._give_up(ctx, task_type, handle, kind, entity, base, message, kind_of)
        if not pools:
            return await self._run_holding(ctx, template, task_type, handle, kind, entity, base)
        tokens = self.engine.tokens
        tenant = f"{ctx.project}/{ctx.domain}"
        base = {**base, "pools": dict(pools), "tenant": tenant}
        try:
            for pool, count in pools:
                tokens.check(pool, tenant, count)
        except PlaitError as exc:
            return await self._give_up(ctx, task_type, handle, kind, entity, base, str(exc), ErrorKind.USER)
        try:
            for pool, count in pools:
                def waiting(position: int, queued: int, pool: str = pool) -> None:
                    self.emit(kind, entity, Phase.WAITING_FOR_RESOURCES, {
                        **base, "waiting": {"pool": pool, "position": position, "queued": queued, "tenant": tenant}})
                await tokens.acquire(pool, tenant, ctx.attempt_id, count, self.options.priority, on_wait=waiting)
            return await self._run_holding(ctx, template, task_type, handle, kind, entity, base)
        finally:
            # Detached (another engine claimed the execution) with shared tokens: the lease is
            # keyed by the attempt id, which the new owner may hold now for the same attempt, so
            # releasing would free its tokens; ours expire with the renewals no longer made.
            if not (self.detached and tokens.shared):
                for pool, _ in pools:
                    tokens.release(pool, ctx.attempt_id)

    async def _give_up(self, ctx: AttemptContext, task_type: TaskType, handle: Handle | None, kind: EventKind,
                       entity: str, base: dict[str, Any], message: str, error_kind: ErrorKind) -> Status:
        """End an attempt that cannot start; work a previous engine started for it is stopped first."""
        if handle is not None:
            await self._stop(_Attempt(task_type, ctx, handle), kind, base, Phase.FAILED, message)
        else:
            self.emit(kind, entity, Phase.FAILED, {**base, "message": message, "error_kind": error_kind.value})
        return Status.failed(message, retryable=error_kind == ErrorKind.SYSTEM, error_kind=error_kind)

    async def _pools(self, task_type: TaskType, template: TaskTemplate) -> list[tuple[str, int]]:
        """The pools one attempt of ``template`` holds, in a fixed order (no lock-order deadlock)."""
        if type(task_type).pools is TaskType.pools:
            return []
        entry = self.pools.get(id(template))
        if entry is None:  # the first item asks; the others starting beside it wait for that answer
            config = task_type.config_model.model_validate(template.config) if task_type.config_model else None
            entry = self.pools[id(template)] = (template, asyncio.ensure_future(
                self.call(task_type, "pools", template, config)))
        try:
            pools: dict[str, int] = await asyncio.shield(entry[1])
        except Exception:
            if self.pools.get(id(template)) is entry:  # a later attempt asks again
                del self.pools[id(template)]
            raise
        return sorted(pools.items())

    async def _run_holding(self, ctx: AttemptContext, template: TaskTemplate, task_type: TaskType,
                           handle: Handle | None, kind: EventKind, entity: str, base: dict[str, Any]) -> Status:
        """Run an attempt whose tokens are held, from submit (or re-attach) to its recorded end."""
        attempt_id = ctx.attempt_id
        attempt = _Attempt(task_type, ctx, handle)
        loop = asyncio.get_running_loop()

        def notify() -> None:
            loop.call_soon_threadsafe(attempt.wake.set)

        ctx.notify = notify
        self.running[attempt_id] = attempt
        try:
            status = await self._drive(attempt, template, kind, base)
        except asyncio.CancelledError:
            await self._stop(attempt, kind, base, Phase.ABORTED, "aborted")
            raise
        finally:
            self.running.pop(attempt_id, None)
        if status.phase == Phase.TIMED_OUT:
            await self._stop(attempt, kind, base, Phase.TIMED_OUT, status.message)
            return status
        await self._cleanup(attempt)
        self.emit(kind, entity, status.phase, _ending(base, status))
        return status

    async def _drive(self, attempt: _Attempt, template: TaskTemplate, kind: EventKind, base: dict[str, Any]) -> Status:
        ctx, task_type = attempt.ctx, attempt.task_type
        deadline = time.monotonic() + template.timeout if template.timeout else math.inf
        if attempt.handle is None:
            try:
                attempt.handle = await self._submit(task_type, ctx, template)
            except PlaitError as exc:
                return Status.failed(f"{template.type} could not start the task: {exc}", retryable=False)
            except Exception as exc:
                return Status.failed(f"task type {template.type!r} failed in submit: {type(exc).__name__}: {exc}",
                                     error_kind=ErrorKind.SYSTEM)
            self.emit(kind, _entity(ctx), Phase.RUNNING, {**base, "handle": attempt.handle})
        interval = 0.01
        loop = asyncio.get_running_loop()
        poll_errors = 0
        shown = Phase.RUNNING  # what the events say; a platform may hold a submitted attempt back
        while True:
            attempt.wake.clear()
            try:
                status: Status = await self.call(task_type, "poll", ctx, attempt.handle)
                poll_errors = 0
            except Exception as exc:
                poll_errors += 1
                if poll_errors < POLL_ERRORS_TOLERATED and not isinstance(exc, PlaitError):
                    # A service that blips (a dropped connection, throttling) is asked again, after a
                    # backoff like a retry's: ending the attempt would start a second job beside the first.
                    status = Status(Phase.RUNNING)
                    interval = max(interval, min(self.options.backoff_base * 2 ** (poll_errors - 1),
                                                 self.options.backoff_max))
                else:
                    # The work may still be running where the task type can no longer see it:
                    # stop it before the attempt ends, so a retry does not run beside it.
                    with contextlib.suppress(Exception):
                        await self.call(task_type, "abort", ctx, attempt.handle)
                    times = f" {poll_errors} times in a row" if poll_errors > 1 else ""
                    status = Status.failed(f"task type {template.type!r} failed in poll{times}: "
                                           f"{type(exc).__name__}: {exc}", error_kind=ErrorKind.SYSTEM)
            if status.phase.terminal:
                if ctx.inline and time.monotonic() > deadline:
                    # Inline, the task ran inside submit and could not be interrupted: it is
                    # judged by its timeout when it returns, as the process pool would have.
                    return Status(Phase.TIMED_OUT, f"ran past its timeout of {template.timeout:g}s "
                                                   "(inline mode judges a timeout when the task returns)")
                return status
            if status.phase != shown and Phase.WAITING_FOR_RESOURCES in (status.phase, shown):
                waiting = {"waiting": {"reason": status.message}} if status.phase == Phase.WAITING_FOR_RESOURCES else {}
                self.emit(kind, _entity(ctx), status.phase, {**base, **waiting})
                shown = status.phase
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Status(Phase.TIMED_OUT, f"timed out after {template.timeout:g}s", retryable=True)
            # Sleep until the task type calls ctx.notify() or the poll interval passes; a
            # timer handle is much cheaper than wait_for, which this loop runs per map item.
            timer = loop.call_later(min(interval, remaining), attempt.wake.set)
            await attempt.wake.wait()
            if not timer.cancelled() and timer.when() <= loop.time() and not poll_errors:
                interval = min(interval * 2, self.options.max_poll_interval)
            timer.cancel()

    async def _submit(self, task_type: TaskType, ctx: AttemptContext, template: TaskTemplate) -> Handle:
        if not task_type.blocking:
            return self._on_platform(task_type.submit(ctx, template))
        started = asyncio.ensure_future(asyncio.to_thread(task_type.submit, ctx, template))
        try:
            return self._on_platform(await asyncio.shield(started))
        except asyncio.CancelledError:
            # Ctrl-C while the plugin was starting the work: the thread goes on and starts it,
            # so wait for its handle; the caller then aborts and cleans up what it started.
            with contextlib.suppress(Exception):
                self.running[ctx.attempt_id].handle = await started
            raise

    def _on_platform(self, handle: Handle) -> Handle:
        """Every handle says where its work runs (a service task type's too: the execution's)."""
        handle.setdefault("platform", self.platform.name)
        return handle

    async def _stop(self, attempt: _Attempt, kind: EventKind, base: dict[str, Any], phase: Phase, message: str) -> None:
        """Abort, clean up and record an attempt that the engine ends (timeout, Ctrl-C)."""
        if self.detached:  # the work is the new owner's to re-attach to: leave it running
            return
        if attempt.handle is not None:
            try:
                await self.call(attempt.task_type, "abort", attempt.ctx, attempt.handle)
            except Exception as exc:  # record the abort all the same; the cleanup still runs
                message += f" (abort failed: {exc})"
        await self._cleanup(attempt)
        data = {**base, "message": message}
        self._log_paths(attempt.ctx, data)
        self.emit(kind, _entity(attempt.ctx), phase, data)

    async def _cleanup(self, attempt: _Attempt) -> None:
        if attempt.handle is None or self.detached:
            return
        try:
            await self.call(attempt.task_type, "cleanup", attempt.ctx, attempt.handle)
        except Exception as exc:
            self._cleanup_failed(attempt.ctx, exc)

    def _cleanup_failed(self, ctx: AttemptContext, exc: Exception) -> None:
        self.emit("cleanup", _entity(ctx) + "#cleanup", Phase.FAILED,
                  {"node": ctx.node_id, "attempt": ctx.attempt, "message": str(exc)})

    @staticmethod
    def _log_paths(ctx: AttemptContext, data: dict[str, Any]) -> None:
        logs = {name: str(p) for name, p in (("stdout", ctx.stdout_path), ("stderr", ctx.stderr_path)) if p.exists()}
        if logs:
            data["logs"] = logs


def run_from_archive(spec: WorkflowSpec, code: dict[str, Any], cache: Path, own_module_names: bool) -> WorkflowSpec:
    """``spec`` with its Python tasks' files moved into the registered code archive, fetched
    and unpacked once per digest under ``cache`` (the files were registered from ``root``).

    ``own_module_names``: name each task's module after the archive too. A worker process
    imports a task's module by name before it tries the file; a module of the same name on
    this machine (or another version's, imported by a warm worker) would run instead. A
    platform that places work (pods) unpacks the archive first on the path: names stay.
    """
    digest, uri, root = code["digest"], code["uri"], Path(code["root"])
    folder = cache / digest
    if not folder.is_dir():
        folder = unpack(BlobStore(posixpath.dirname(uri)).read_bytes(uri), digest, cache)

    def moved(wf: WorkflowSpec) -> WorkflowSpec:
        tasks = {}
        for key, task in wf.tasks.items():
            if task.ref is not None and task.ref.file and Path(task.ref.file).is_relative_to(root):
                moved_ref = {"file": str(folder / Path(task.ref.file).relative_to(root))}
                if own_module_names:
                    moved_ref["module"] = f"{task.ref.module}__plait_{digest[:12]}"
                task = task.model_copy(update={"ref": task.ref.model_copy(update=moved_ref)})
            tasks[key] = task
        subs = {key: moved(sub) for key, sub in wf.subworkflows.items()}
        return wf.model_copy(update={"tasks": tasks, "subworkflows": subs})

    return moved(spec)


def _ending(base: dict[str, Any], status: Status) -> dict[str, Any]:
    """The data of the event that records how an attempt ended (``base``: its node, index, number)."""
    data = dict(base)
    if status.phase == Phase.SUCCEEDED:
        if "index" in base:  # a node's outputs are recorded by its node event
            data["outputs"] = status.outputs
    else:
        data["message"] = status.message
        data["error_kind"] = status.error_kind.value
    if status.log_links:
        data["logs"] = status.log_links
    return data


def _entity(ctx: AttemptContext) -> str:
    """An attempt's entity in the event log: its id less the execution id it is stored under."""
    return ctx.attempt_id[len(ctx.execution_id) + 1:]





