"""Engine workers: a background service of the server that claims queued executions and runs them.

The server runs ``config.engines`` :class:`~plait.engine.host.EngineHost` loops (each its own
claimant, with its own owner id) on one event loop in a thread of their own, over one engine
built from the server's store and blob store; executions run on the platform each was
launched for. More capacity is more ``plait engine`` processes on the same store: every
claimant takes executions from the same queue, under a lease, so none runs twice.

Stopping the server gives its executions up as a crash would (nothing is aborted): their
leases expire and the next engine (this server restarted, or any ``plait engine``) resumes
them from their events. Configured by environment variables:

- ``PLAIT_SERVER_LEASE_S``: how long a claim outlives its engine's last renewal (default 30;
  renewed every third of it, and abort requests are looked for at least every 2 s).
- ``PLAIT_SERVER_ENGINE_CONCURRENCY``: executions each engine worker runs at once (default 16).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from fastapi import FastAPI
from plait.engine import Engine, build_engine
from plait.engine.host import EngineHost
from plait.model.settings import Settings

from plait_server.app import services

log = logging.getLogger("plait.server.workers")


@dataclass(frozen=True)
class WorkerSettings:
    """How the server's engine workers claim: lease length and executions per worker."""

    lease_s: float = 30.0
    concurrency: int = 16

    @classmethod
    def from_env(cls) -> WorkerSettings:
        return cls(lease_s=float(os.environ.get("PLAIT_SERVER_LEASE_S", "30")),
                   concurrency=int(os.environ.get("PLAIT_SERVER_ENGINE_CONCURRENCY", "16")))


class EngineWorkers:
    """``count`` engine hosts serving the queue on one event loop in a thread of their own."""

    def __init__(self, settings: Settings, count: int, worker: WorkerSettings) -> None:
        self.settings, self.count, self.worker = settings, count, worker
        self.hosts: list[EngineHost] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="plait-engine-workers", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(60)

    def _run(self) -> None:
        engine = build_engine(self.settings)
        try:
            asyncio.run(self._serve(engine))
        except Exception:
            log.exception("the server's engine workers stopped")
        finally:
            self._ready.set()
            engine.close()

    async def _serve(self, engine: Engine) -> None:
        self._loop = asyncio.get_running_loop()
        self.hosts = [EngineHost(engine, lease_s=self.worker.lease_s, concurrency=self.worker.concurrency)
                      for _ in range(self.count)]
        self._ready.set()
        await asyncio.gather(*(host.serve() for host in self.hosts))

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop claiming and give every running execution up (its lease expires; it is resumed)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            for host in self.hosts:
                loop.call_soon_threadsafe(host.stop)
        self._thread.join(timeout_s)


def start(app: FastAPI) -> Callable[[], None]:
    """The server's engine workers (none with ``engines`` 0)."""
    config = app.state.config
    if config.engines <= 0:
        return lambda: None
    settings = replace(Settings.from_env(), db_url=config.db_url, blob_url=config.blob_url)
    workers = EngineWorkers(settings, config.engines, WorkerSettings.from_env())
    app.state.engine_workers = workers
    workers.start()
    return workers.stop


services.append(start)
