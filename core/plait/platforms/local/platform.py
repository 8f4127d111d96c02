"""The ``local`` platform: compute on this machine.

Command lines run as supervised process groups (:class:`LocalProcess`: the state is in the
attempt's folder, so another engine process can poll, kill or clean up after a restart);
Python attempts run in a pool of worker processes, one per core or ``PLAIT_WORKERS``.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from plait.model.settings import default_workers
from plait.model.status import Handle
from plait.model.wire import CommandWork, Placement
from plait.platforms.local.pool import WorkerPool
from plait.platforms.local.process import LocalProcess
from plait.plugins.platform import Platform, ResultCallback
from plait.runtime.job import SECRETS_ENV


class LocalPlatform(Platform):
    """Processes and worker processes on this machine."""

    name = "local"
    takes_chunks = True

    def __init__(self) -> None:
        self.processes = LocalProcess()
        self._pool: WorkerPool | None = None
        self._lock = threading.Lock()  # a pool is created once even if two threads submit

    # -- command lines ---------------------------------------------------------------------

    def start(self, work: CommandWork) -> Handle:
        env = {**work.env, **work.secret_env}  # only in the command's own environment
        if work.secrets:  # read_job takes them out again, so what the command starts lacks them
            env[SECRETS_ENV] = json.dumps(work.secrets)
        handle = self.processes.start(Path(work.folder), work.argv, env=env, cwd=work.cwd)
        handle["platform"] = self.name
        return handle

    def exit_code(self, handle: Handle) -> int | None:
        return self.processes.exit_code(handle)

    def logs(self, handle: Handle) -> tuple[str, str]:
        return self.processes.logs(handle)

    def log_paths(self, handle: Handle) -> dict[str, str]:
        paths = {}
        for name in ("stdout", "stderr"):
            path = Path(handle["workdir"]) / f"{name}.log"
            if path.exists() and path.stat().st_size:
                paths[name] = str(path)
        return paths

    def kill(self, handle: Handle) -> None:
        self.processes.kill(handle)

    def release(self, handle: Handle) -> None:
        self.processes.forget(handle)

    # -- Python attempts -------------------------------------------------------------------

    @property
    def pool(self) -> WorkerPool:
        with self._lock:
            if self._pool is None:
                self._pool = WorkerPool(self.python_slots())
            return self._pool

    def submit_python(self, job_id: str, payload: dict[str, Any], done: ResultCallback,
                      placement: Placement | None = None) -> None:
        self.pool.submit(job_id, payload, done)

    def warm_up(self) -> None:
        def start() -> None:
            try:
                self.pool.start()
            except Exception:  # the first attempt starts the pool again, and says what failed
                pass

        threading.Thread(target=start, name="plait-pool-start", daemon=True).start()

    def submit_python_chunk(self, jobs: list[tuple[str, dict[str, Any], ResultCallback]]) -> None:
        self.pool.submit_many(jobs)

    def cancel_python(self, job_id: str) -> None:
        if self._pool is not None:
            self._pool.cancel(job_id)

    def collect(self) -> None:
        if self._pool is not None:
            self._pool.collect()

    def python_slots(self, items: int | None = None) -> int:
        return int(os.environ.get("PLAIT_WORKERS") or default_workers())

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
