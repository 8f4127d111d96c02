"""The local platform's two helpers: a pool of worker processes, and a supervised process.

:class:`WorkerPool` runs Python task attempts in long-lived worker processes (one per core
by default); aborting an attempt kills its worker's process group, and a replacement is
started. :class:`LocalProcess` runs one command line as its own process group, named by the
attempt, so a plugin only describes the command: starting it again attaches, aborting kills
the whole tree, and the exit code survives an engine restart.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import multiprocessing
import multiprocessing.connection
import os
import select
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from plait.model.settings import SECRET_ENV_PREFIX, without_secrets
from plait.platforms.local.process import LOG_LIMIT, _kill_group

Callback = Callable[[dict[str, Any]], None]

RESULT_GROUP_S = 0.005
"""A worker running a chunk of items sends the results it has at least this often."""


def _die_with_the_engine() -> None:
    """Have the kernel kill this worker when its parent goes: the forkserver, which ends when
    the engine does, however it ends (``kill -9`` included). A worker must not outlive its
    engine: a resumed execution starts the attempt it was running again, and the two would run
    side by side. (The parent is the forkserver's one thread, so the signal is not sent early.)"""
    parent = os.getppid()
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the worker ends when it next reads its pipe
        return
    if os.getppid() != parent:  # the parent went before the request was made
        os._exit(1)


def _worker_main(conn: multiprocessing.connection.Connection) -> None:
    os.setsid()  # abort kills the worker's process group: the task's children go with it
    _die_with_the_engine()
    for key in [k for k in os.environ if k.startswith(SECRET_ENV_PREFIX)]:
        del os.environ[key]  # a task gets the secrets it declared in its payload, no others
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the engine's to handle
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    saved = os.dup(1), os.dup(2)
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        jobs, context = message
        if context is not None:  # the engine's environment or sys.path changed since this worker started
            env, path = context
            sys.path[:] = path
            os.environ.clear()
            os.environ.update(without_secrets(env))
            import fsspec.config

            fsspec.config.set_conf_env(fsspec.config.conf)
        done: list[tuple[str, dict[str, Any]]] = []
        sent = time.monotonic()
        for job_id, payload in jobs:
            done.append((job_id, _run_captured(payload, out, err, saved)))
            # Results go back as they come, grouped when items take microseconds: one message
            # per item would cost the engine more than running the items does.
            if time.monotonic() - sent > RESULT_GROUP_S:
                conn.send(done)
                done, sent = [], time.monotonic()
        if done:
            conn.send(done)


def _run_captured(payload: dict[str, Any], out: Any, err: Any, saved: tuple[int, int]) -> dict[str, Any]:
    """Run one attempt with its stdout and stderr (file descriptors 1 and 2) kept in its result."""
    from plait.runtime.attempt import run_attempt

    for f in (out, err):
        f.seek(0)
        f.truncate()
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    try:
        result = run_attempt(payload)
    except BaseException as exc:  # never lose the cause to a dead worker
        import traceback

        result = {"status": "failed", "retryable": True, "error_kind": "system",
                  "message": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
    result["stdout"] = _tail(out)
    result["stderr"] = _tail(err)
    return result


def _tail(f: Any) -> str:
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        return ""
    f.seek(max(0, size - LOG_LIMIT))
    return str(f.read().decode("utf-8", "replace"))


class _Worker:
    def __init__(self, ctx: Any) -> None:
        parent, child = ctx.Pipe()
        self.conn = parent
        self.process = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.jobs: dict[str, None] = {}
        """The jobs of the chunk it runs, in order, less those whose results came back."""
        self.context_version = 0
        self.dead = False
        self.retiring = False
        # Connection.poll() builds a selector per call; one registered poller is far cheaper.
        self._poller = select.poll()
        self._poller.register(parent.fileno(), select.POLLIN)

    def readable(self) -> bool:
        return bool(self._poller.poll(0))


class WorkerPool:
    """A fixed number of worker processes that run Python task attempts one at a time each.

    Jobs are queued in chunks (:meth:`submit_many`): an idle worker takes the next chunk in
    one message and sends its results back as they come, several per message when its items
    are quick.

    No thread handles results: when an asyncio loop is running, the workers' pipes are
    watched by it (results are handled the moment they arrive, with no lock or GIL hand-off);
    without one, :meth:`collect` picks results up, and a task type's ``poll`` calls it. Only
    :meth:`start` may run in a thread of its own (a platform's ``warm_up``).

    A worker that dies loses the results it ran but had not sent yet (at most
    ``RESULT_GROUP_S`` of items): those jobs fail as a worker death and run again, as a job
    whose worker died just after it ended always did.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(["plait.runtime.attempt", "plait.types.builtin"])
        self._pending: collections.deque[list[tuple[str, dict[str, Any], Callback]]] = collections.deque()
        self._callbacks: dict[str, Callback] = {}
        self._cancelled: set[str] = set()
        self._workers: list[_Worker] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._starting = threading.Lock()  # ``start`` may run in a thread while jobs come
        # Workers are forked from a server started once; pass on later changes to the
        # environment (credentials, endpoints) so a task sees what the engine sees.
        self._env = dict(os.environ)
        self._env_raw = dict(_raw_environ())
        # And sys.path: a worker started early (warm_up) has the path from before the engine
        # imported the workflow's file, which put the file's folder (and its packages) on it.
        self._path = list(sys.path)
        self._context_version = 1  # a worker gets both with its first job, and again after a change

    def submit(self, job_id: str, payload: dict[str, Any], callback: Callback) -> None:
        """Queue ``payload``; ``callback(result)`` is called when the attempt ends."""
        self.submit_many([(job_id, payload, callback)])

    def submit_many(self, jobs: list[tuple[str, dict[str, Any], Callback]]) -> None:
        """Queue ``jobs`` as one chunk, run one after another by one worker; each job's
        callback is called with its result as it ends."""
        if not jobs:
            return
        self.start()
        if _raw_environ() != self._env_raw or sys.path != self._path:  # compared in C, once per chunk
            self._env, self._env_raw, self._path = dict(os.environ), dict(_raw_environ()), list(sys.path)
            self._context_version += 1
        self._watch_from_running_loop()
        self._pending.append(jobs)
        self._pump()

    def start(self) -> None:
        """Start the worker processes, if not started yet (the first job does it otherwise)."""
        if self._workers:  # started: every submit asks, so without taking the lock
            return
        with self._starting:
            if self._workers or self._closed:
                return
            workers: list[_Worker] = []
            try:
                for _ in range(self.size):
                    workers.append(_Worker(self._ctx))
            except BaseException:  # none of them outlives a start that failed half-way
                for worker in workers:
                    worker.process.kill()
                raise
            self._workers = workers
            atexit.register(self.shutdown)  # no worker outlives the interpreter

    def cancel(self, job_id: str) -> None:
        """Forget a queued job, or kill the worker running it (a new worker replaces it; the
        other jobs of its chunk whose results had not come back fail as a worker death)."""
        for chunk in self._pending:
            for i, (jid, _, _) in enumerate(chunk):
                if jid == job_id:
                    del chunk[i]
                    if not chunk:
                        self._pending.remove(chunk)
                    return
        for worker in self._workers:
            if job_id in worker.jobs:
                self._cancelled.add(job_id)
                worker.retiring = True  # its result may already be in the pipe: no new job for it
                _kill_group(worker.process.pid)
                if self._loop is None:
                    worker.process.join(timeout=5)
                    self._on_death(worker)

    def collect(self) -> None:
        """Handle finished attempts and dead workers now, without waiting (no event loop needed)."""
        if self._loop is not None and not self._loop.is_closed():
            return  # the loop already handles them as they arrive
        for worker in list(self._workers):
            if worker.jobs and worker.readable():
                self._on_result(worker)
            if not worker.process.is_alive():
                self._on_death(worker)
        self._pump()

    def shutdown(self) -> None:
        """Stop every worker, killing any running attempt."""
        atexit.unregister(self.shutdown)
        with self._starting:  # workers being started now are stopped too
            if self._closed:
                return
            self._closed = True
        self._unwatch()
        for worker in self._workers:
            if not worker.jobs:
                try:
                    worker.conn.send(None)
                except OSError:
                    pass
            else:
                _kill_group(worker.process.pid)
        for worker in self._workers:
            worker.process.join(timeout=2)
            if worker.process.is_alive():
                worker.process.kill()

    # -- internals -------------------------------------------------------------------------

    def _pump(self) -> None:
        for worker in self._workers:
            if not self._pending:
                return
            if not worker.jobs and not worker.dead and not worker.retiring:
                chunk = self._pending.popleft()
                for job_id, _, callback in chunk:
                    worker.jobs[job_id] = None
                    self._callbacks[job_id] = callback
                context = None
                if worker.context_version != self._context_version:
                    context, worker.context_version = (self._env, self._path), self._context_version
                try:
                    worker.conn.send(([(job_id, payload) for job_id, payload, _ in chunk], context))
                except OSError:
                    pass  # the worker died; its death is reported with the job

    def _watch_from_running_loop(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if loop is not self._loop:
            self._unwatch()
            self._loop = loop
            for worker in self._workers:
                self._watch(worker)

    def _watch(self, worker: _Worker) -> None:
        if self._loop is not None:
            self._loop.add_reader(worker.conn.fileno(), self._on_result, worker)
            self._loop.add_reader(worker.process.sentinel, self._on_death, worker)

    def _unwatch(self, workers: list[_Worker] | None = None) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            self._loop = None if workers is None else loop
            return
        for worker in workers if workers is not None else self._workers:
            loop.remove_reader(worker.conn.fileno())
            loop.remove_reader(worker.process.sentinel)
        if workers is None:
            self._loop = None

    def _on_result(self, worker: _Worker) -> None:
        try:
            if not worker.readable():  # readiness seen by the loop may have been consumed since
                return
            results = worker.conn.recv()
        except (EOFError, OSError):
            self._on_death(worker)
            return
        for job_id, result in results:
            self._finish(worker, job_id, result)
        if not worker.jobs:
            self._pump()

    def _finish(self, worker: _Worker, job_id: str, result: dict[str, Any]) -> None:
        worker.jobs.pop(job_id, None)
        callback = self._callbacks.pop(job_id, None)
        if job_id in self._cancelled:
            self._cancelled.discard(job_id)
        elif callback is not None:
            callback(result)

    def _on_death(self, worker: _Worker) -> None:
        if worker.dead:
            return
        worker.dead = True
        self._unwatch([worker])
        if self._closed:
            return
        worker.process.join(timeout=1)
        replacement = _Worker(self._ctx)
        self._workers[self._workers.index(worker)] = replacement
        self._watch(replacement)
        for job_id in list(worker.jobs):
            self._finish(worker, job_id, {
                "status": "failed", "retryable": True, "error_kind": "system",
                "message": f"the worker process running this attempt died (exit code {worker.process.exitcode})",
            })
        worker.conn.close()
        self._pump()


def _raw_environ() -> dict[Any, Any]:
    """The environment as CPython keeps it (a dict of bytes), to compare without decoding."""
    data = getattr(os.environ, "_data", None)
    return data if isinstance(data, dict) else dict(os.environ)












