"""Watch events and the in-process subscriptions that deliver them to kubelets and operators."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from plait.testing.kubeapi.errors import ApiStatusError
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


class Follower:
    """A simulated node's loop: on a thread of its own, every change of one resource (the
    objects already there first) goes to ``handle``, then ``after`` runs. An
    :class:`ApiStatusError` from ``handle`` means the object changed or went meanwhile; a later
    event says so, so it is dropped."""

    def __init__(self, api: KubeAPI, resource: str, handle: Callable[[WatchEvent], None], *, name: str,
                 after: Callable[[], None] | None = None) -> None:
        self._api = api
        self._resource = resource
        self._handle = handle
        self._after = after
        self._name = name
        self._sub: Subscription | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._sub = self._api.subscribe(self._resource, replay=True)
        self._thread = threading.Thread(target=self._loop, args=(self._sub,), name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop following; the event being handled, if any, finishes first (10 s at most)."""
        if self._sub is not None:
            self._sub.close()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _loop(self, sub: Subscription) -> None:
        for event in sub:
            try:
                self._handle(event)
            except ApiStatusError:
                pass  # the object changed or went meanwhile; a later event says so
            if self._after is not None:
                self._after()
