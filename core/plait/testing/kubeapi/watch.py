"""Watch events and the in-process subscriptions that deliver them to kubelets and operators."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from plait.testing.kubeapi.resources import Obj

if TYPE_CHECKING:
    from plait.testing.kubeapi.server import KubeAPI


@dataclass(frozen=True)
class WatchEvent:
    """One change: ``type`` ADDED, MODIFIED or DELETED, the resource key and the object."""

    type: str
    resource: str
    object: Obj
    resource_version: int
    old: Obj | None = None


class Subscription:
    """Every change the emulator makes, in order, for in-process kubelets and operators."""

    def __init__(self, owner: KubeAPI, resource: str | None) -> None:
        self._owner = owner
        self.resource = resource
        self._queue: queue.Queue[WatchEvent | None] = queue.Queue()

    def _offer(self, event: WatchEvent) -> None:
        if self.resource is None or self.resource == event.resource:
            self._queue.put(event)

    def get(self, timeout: float | None = None) -> WatchEvent | None:
        """The next change, or None after ``timeout`` seconds or once closed."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def __iter__(self) -> Iterator[WatchEvent]:
        while True:
            event = self._queue.get()
            if event is None:
                return
            yield event

    def close(self) -> None:
        self._owner._unsubscribe(self)
        self._queue.put(None)

