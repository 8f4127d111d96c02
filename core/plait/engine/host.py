"""An engine process: claims queued executions and runs many of them at once on one event loop.

:class:`EngineHost` claims up to ``concurrency`` executions from the
:class:`~plait.storage.queue.ExecutionQueue`, runs each as an asyncio task through one
:class:`~plait.engine.execution.Engine`, renews their leases every third of the lease, and
removes each from the queue when it ends. An execution whose claim was lost (this engine
stalled past its lease and another took it over) is detached: it stops here without
recording anything, as if this engine had died. A claimed execution that already has events
(its previous owner died) is resumed from them; any other runs from its stored inputs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from typing import Any

from plait.engine.execution import Engine, ExecutionResult, Listener, RunOptions
from plait.model.status import Phase
from plait.storage.queue import Claim, ExecutionQueue, new_owner

_ENDED = {p.value for p in Phase if p.terminal}

ABORT_CHECK_S = 2.0
"""How often at most a host renews its leases and looks for abort requests (a shorter lease
renews more often: every third of it)."""
_OPTION_FIELDS = {f.name for f in dataclasses.fields(RunOptions)}


def default_owner() -> str:
    """An engine id that names where it runs: host, process id, and a random suffix."""
    return new_owner()


def run_options(claim: Claim) -> RunOptions:
    """The run options stored with a queued execution (unknown keys, such as a platform this
    engine version does not model, are ignored)."""
    known = {k: v for k, v in claim.options.items() if k in _OPTION_FIELDS}
    return RunOptions(**{**known, "execution_id": claim.execution_id})


class EngineHost:
    """Serves the queue of ``engine``'s store: claim, run concurrently, renew, finish."""

    def __init__(self, engine: Engine, owner: str | None = None, lease_s: float = 30.0,
                 concurrency: int = 16, poll_s: float = 0.5, queue: ExecutionQueue | None = None,
                 abort_check_s: float = ABORT_CHECK_S) -> None:
        self.engine = engine
        self.owner = owner or default_owner()
        self.lease_s = lease_s
        self.concurrency = concurrency
        self.poll_s = poll_s
        self.abort_check_s = abort_check_s
        self.queue = queue or ExecutionQueue(engine.store)
        self.running: dict[str, asyncio.Task[ExecutionResult | None]] = {}
        """Claimed executions running now, by id."""
        self.results: dict[str, ExecutionResult | None] = {}
        """How each execution this host ran ended (None: it was detached or could not start)."""
        self._stopping = False
        self._detached: set[str] = set()
        self._aborted: set[str] = set()
        self._wake: asyncio.Event | None = None

    def stop(self) -> None:
        """Stop claiming and give every running execution up (as a crash would: nothing is
        aborted; the leases expire and other engines resume them). :meth:`serve` returns."""
        self._stopping = True
        if self._wake is not None:
            self._wake.set()

    async def serve(self, stop_when_idle: bool = False) -> None:
        """Claim and run executions until :meth:`stop` (or, with ``stop_when_idle``, until the
        queue has nothing this host can claim and nothing of its own is running)."""
        self._wake = asyncio.Event()
        renewer = asyncio.create_task(self._renew_periodically())
        try:
            while not self._stopping:
                free = self.concurrency - len(self.running)
                claimed = self.queue.claim(self.owner, self.lease_s, free) if free > 0 else []
                for claim in claimed:
                    self.running[claim.execution_id] = asyncio.create_task(self._run(claim))
                    self.running[claim.execution_id].add_done_callback(lambda _t: self._wake_up())
                if stop_when_idle and not claimed and not self.running:
                    return
                if claimed and len(self.running) < self.concurrency:
                    continue  # there may be more to claim right away
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_s)
                except TimeoutError:
                    pass
        finally:
            renewer.cancel()
            await self._give_up(list(self.running))
            self.engine.store.flush()

    async def run_claimed(self, claim: Claim, listener: Listener | None = None,
                          resume: RunOptions | None = None) -> ExecutionResult | None:
        """Run one execution this host already holds (``plait run`` enqueues its own claimed),
        renewing its lease until it ends. None if the claim was lost to another engine.
        With ``resume``, resume it with those options, whatever its phase (a failed one too)."""
        renewer = asyncio.create_task(self._renew_periodically())
        task = asyncio.create_task(self._run(claim, listener, reraise=True, resume=resume))
        self.running[claim.execution_id] = task
        try:
            return await task
        finally:
            renewer.cancel()

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _run(self, claim: Claim, listener: Listener | None = None, reraise: bool = False,
                   resume: RunOptions | None = None) -> ExecutionResult | None:
        xid = claim.execution_id
        result: ExecutionResult | None = None
        try:
            row = self.engine.store.execution(xid)
            started = self.queue.started(xid)
            if resume is None and row["phase"] in _ENDED:
                pass  # it ended, but its engine died before removing it from the queue
            elif started:  # an earlier owner ran some of it (or a resume was asked for): carry on
                result = await self.engine.resume(xid, resume or run_options(claim), listener)
            else:  # never started: run it from the inputs it was queued with
                spec = self.engine.store.spec(row["version"])
                options = resume or run_options(claim)
                options.execution_id = xid
                options.project, options.domain = row["project"], row["domain"]  # the tenant is the row's
                result = await self.engine.run(spec, claim.inputs, options, listener, queued=True)
        except Exception as exc:  # an execution that cannot even start must not stop the engine
            if reraise:
                raise
            print(f"plait engine: execution {xid} could not run: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            self.running.pop(xid, None)
            detached = xid in self._detached
            self.results[xid] = None if detached else result
            if not detached:  # a detached one stays queued: its new owner (or the next engine) has it
                self.queue.finish(self.owner, xid)
        return result

    async def _renew_periodically(self) -> None:
        while True:
            await asyncio.sleep(min(self.lease_s / 3, self.abort_check_s))
            if not self.running:
                continue
            try:
                held = self.queue.renew(self.owner, list(self.running), self.lease_s)
                asked = self.queue.abort_requests(held)
            except Exception as exc:  # the database blipped: try again at the next tick
                print(f"plait engine: renewing leases failed, will retry: {exc}", file=sys.stderr)
                continue
            for xid, by in asked.items():
                self._abort(xid, f"aborted by {by}")
            lost = [xid for xid in self.running if xid not in held]
            if lost:
                print(f"plait engine: lost the claim on {', '.join(lost)}; another engine runs them now",
                      file=sys.stderr)
                await self._give_up(lost)

    def _abort(self, execution_id: str, reason: str) -> None:
        """Abort a running execution through the engine's abort path: its attempts are aborted
        and cleaned up, its tokens released, and it ends ``aborted`` with ``reason``."""
        task = self.running.get(execution_id)
        if task is None or execution_id in self._aborted:
            return  # asked again at the next renewal: once is enough, the abort is under way
        self._aborted.add(execution_id)
        self.engine.abort(execution_id, reason)
        task.cancel()

    async def _give_up(self, ids: list[str]) -> None:
        """Detach and cancel these executions: nothing more is recorded for them here."""
        tasks: list[asyncio.Task[Any]] = []
        for xid in ids:
            self._detached.add(xid)
            self.engine.detach(xid)
            task = self.running.get(xid)
            if task is not None:
                task.cancel()
                tasks.append(task)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
