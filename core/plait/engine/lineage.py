"""The engine's lineage recorder: each attempt's OpenLineage run events, and their forwarding.

An attempt is recorded when it starts (START, with the datasets among its inputs) and when it
ends (COMPLETE with the datasets among its outputs, FAIL with its error, ABORT). Every task
node's attempts are recorded; a map's items only when the task's interface can hold a dataset
(a file, a directory, a data frame, a table): a map of 100,000 items over numbers would
otherwise send 200,000 events that name no data. Events are buffered and written with the
engine's event batches (:meth:`LineageRecorder.flush`), so the hot path pays for building a
dict, not for a write.

With a forwarding URL (``PLAIT_LINEAGE_URL``) each event is also POSTed to
``<url>/api/v1/lineage``, as OpenLineage's HTTP transport does, from a thread of its own: an
endpoint that fails or is down is logged (logger ``plait.lineage``) and never fails a run; its
events stay in the store's outbox and are sent again after a backoff, by this engine or the
next one started with the URL.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from plait.model.lineage import (
    AttemptRun,
    Dataset,
    Direction,
    EventType,
    RunRecord,
    datasets,
    has_datasets,
    terminal_event,
)
from plait.model.spec import TaskTemplate
from plait.model.status import Phase, Status
from plait.storage.lineage import LineageStore

if TYPE_CHECKING:
    from plait.engine.execution import _Execution

log = logging.getLogger("plait.lineage")

TIMEOUT_S = 5.0
"""How long one POST to the forwarding endpoint may take."""
MAX_BACKOFF_S = 60.0


class LineageRecorder:
    """Records attempts' run events in a :class:`LineageStore`; forwards them to ``url`` if given."""

    def __init__(self, store: LineageStore, url: str | None = None) -> None:
        self.store = store
        self.url = url.rstrip("/") + "/api/v1/lineage" if url else None
        self._due = bool(url)  # events may wait in the outbox from an earlier engine
        self._failures = 0
        self._retry_at = 0.0
        self._sender: threading.Thread | None = None
        self._lock = threading.Lock()

    async def recording(self, execution: _Execution, path: str, template: TaskTemplate, inputs: dict[str, Any],
                        number: int, index: int | None, attempt: Awaitable[Status]) -> Status:
        """Await ``attempt`` (one attempt of ``template`` at node ``path``), recording its start and end."""
        if index is not None and not has_datasets(template):
            return await attempt
        options = execution.options
        run = AttemptRun(execution.id, execution.spec.name, options.project, options.domain, template.name,
                         template.type, path, number, index)
        try:
            reads = datasets(inputs, template.interface.inputs)
            self._record(execution, run, "START", reads, [])
        except Exception:  # lineage records the work: it is never why the work fails
            log.exception("plait: recording lineage of attempt %s/%s failed; it runs unrecorded", run.execution_id,
                          run.entity)
            return await attempt
        try:
            status = await attempt
        except asyncio.CancelledError:
            self._record(execution, run, "ABORT", reads, [])
            raise
        try:
            produced = datasets(status.outputs, template.interface.outputs) if status.phase == Phase.SUCCEEDED else []
            self._record(execution, run, terminal_event(status.phase), reads, produced, status.message)
        except Exception:
            log.exception("plait: recording the end of attempt %s/%s failed", run.execution_id, run.entity)
        return status

    def _record(self, execution: _Execution, run: AttemptRun, event_type: EventType, reads: list[Dataset],
                produced: list[Dataset], message: str | None = None) -> None:
        if execution.detached:  # another engine owns the execution: it records
            return
        at = time.time()
        used: list[tuple[Dataset, Direction]] = [(d, "produced") for d in produced]
        if event_type == "START":
            used += [(d, "read") for d in reads]
        record = RunRecord(run, event_type, at, tuple(reads), tuple(produced), message)
        self.store.record(record, used, forward=self.url is not None)
        self._due = self._due or self.url is not None

    def flush(self) -> None:
        """Write the buffered events; start forwarding them if there is an endpoint and it is time."""
        self.store.flush()
        if self.url is None or not self._due or time.monotonic() < self._retry_at:
            return
        with self._lock:
            if self._sender is None or not self._sender.is_alive():
                self._due = False
                self._sender = threading.Thread(target=self.forward, name="plait-lineage-forward", daemon=True)
                self._sender.start()

    def close(self) -> None:
        """Flush, and give the events not yet forwarded one more try before the process ends."""
        self.store.flush()
        if self._sender is not None:
            self._sender.join()
        if self.url is not None and self._due:
            self.forward()

    def forward(self) -> bool:
        """POST the events waiting in the outbox, oldest first; stop at the first failure.
        Whether every waiting event was delivered."""
        assert self.url is not None
        while True:
            batch = self.store.pending()
            if not batch:
                return True
            for seq, body in batch:
                error = _post(self.url, body)
                if error is not None:
                    self._failed(seq, error)
                    return False
                self.store.delivered(seq)
                self._failures = 0

    def _failed(self, seq: int, error: str) -> None:
        self._failures += 1
        backoff = min(MAX_BACKOFF_S, 2.0 ** (self._failures - 1))
        self._retry_at = time.monotonic() + backoff
        self._due = True
        self.store.undeliverable(seq, error)
        log.warning("plait: forwarding lineage to %s failed (%s); %d events wait in the store, retrying in %gs",
                    _shown(self.url or ""), error, self.store.undelivered(), backoff)


def _post(url: str, body: bytes) -> str | None:
    """POST one event; None when the endpoint accepted it, else why not."""
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {exc.reason}"
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _shown(url: str) -> str:
    """``url`` as it may be logged: without a user or password."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=host).geturl()
