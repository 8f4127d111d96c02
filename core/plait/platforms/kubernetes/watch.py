"""One shared watch per (namespace, kind): polls read a cache, changes call the attempt back.

An engine running a thousand pods must not ask the API server about each one every few
seconds. Instead one watch per namespace and kind (an informer, in client-go's words) keeps the
latest version of every object in memory; ``poll`` reads it (:meth:`SharedWatch.get`, no
request), and the attempt's ``notify`` is called when its object changes
(:meth:`SharedWatch.on_change`), so the engine polls at once instead of on a timer.

Two parts, as in :mod:`plait.tokens`: :class:`WatchCache` is pure (events in, changes out; no
I/O, no threads, no clock), so its ordering rules are tested exhaustively; :class:`SharedWatch`
is the thread that lists, watches from the list's resourceVersion, re-lists when the server
answers 410 Gone (its history was compacted past our version), and reconnects with backoff
after any other failure, feeding the cache. :class:`Watches` hands out one per (namespace, kind).
"""

from __future__ import annotations

import copy
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from plait.platforms.kubernetes.objects import Kind, KubernetesObjects

Obj = dict[str, Any]
ChangeType = Literal["ADDED", "MODIFIED", "DELETED"]

log = logging.getLogger(__name__)

GONE = 410


# ---- the pure part ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """What an event or a re-list changed: one object, added, modified or deleted."""

    type: ChangeType
    name: str
    object: Obj


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def newer(a: str, b: str) -> bool:
    """Whether resourceVersion ``a`` is later than ``b``.

    resourceVersions are opaque to clients, but within one resource they are the store's
    revision numbers (etcd's), which only grow; an unnumbered one counts as newer when it
    differs, so a server that numbers otherwise still gets every change through.
    """
    if a.isdigit() and b.isdigit():
        return int(a) > int(b)
    return a != b


class WatchCache:
    """The objects of one (namespace, kind), as the last list and the watch events since say.

    :attr:`resource_version` is where the next watch starts (None: list first). Events older
    than what the cache holds for a name, and repeats of it, change nothing: they happen when
    a watch resumes or a list races an event. A deleted name keeps its resourceVersion as a
    tombstone, so a late event cannot bring the object back.
    """

    def __init__(self) -> None:
        self._objects: dict[str, Obj] = {}
        self._tombstones: dict[str, str] = {}
        self.resource_version: str | None = None

    @property
    def needs_list(self) -> bool:
        """Whether the next step is a full list (at start, and after 410 Gone)."""
        return self.resource_version is None

    def get(self, name: str) -> Obj | None:
        obj = self._objects.get(name)
        return copy.deepcopy(obj) if obj is not None else None

    def names(self) -> list[str]:
        return sorted(self._objects)

    def replace(self, items: Iterable[Obj], resource_version: str) -> list[Change]:
        """Take a full list, made at ``resource_version``; return what differs from before.

        An object the cache holds at a version later than the list (seen through
        :meth:`observe` after the list was made) is kept, and so is its absence from the list.
        """
        listed = {str(o["metadata"]["name"]): o for o in items}
        changes: list[Change] = []
        # A tombstone older than the list is answered by the list itself; a later one stays.
        tombstones = {n: rv for n, rv in self._tombstones.items()
                      if n not in listed and newer(rv, resource_version)}
        for name in sorted(set(self._objects) - set(listed)):
            gone = self._objects[name]
            if newer(_rv(gone), resource_version):
                continue
            del self._objects[name]
            tombstones[name] = resource_version
            changes.append(Change("DELETED", name, gone))
        for name, obj in listed.items():
            held = self._objects.get(name)
            if held is not None and not newer(_rv(obj), _rv(held)):
                continue
            self._objects[name] = obj
            changes.append(Change("ADDED" if held is None else "MODIFIED", name, obj))
        self._tombstones = tombstones
        self.resource_version = resource_version
        return changes

    def apply(self, event_type: str, obj: Obj) -> Change | None:
        """Apply one watch event; return the change, or None when it changes nothing.

        ``BOOKMARK`` only moves :attr:`resource_version` on. ``ERROR`` events are the shell's
        (see :meth:`after_error`), not the cache's.
        """
        rv = _rv(obj)
        if event_type == "BOOKMARK":
            self._advance(rv)
            return None
        if event_type not in ("ADDED", "MODIFIED", "DELETED"):
            raise ValueError(f"not a watch event type the cache applies: {event_type!r}")
        change = self._apply(event_type, obj)
        self._advance(rv)
        return change

    def observe(self, obj: Obj) -> Change | None:
        """Take an object read outside the watch (the reply to a create), if it is newer.

        It does not move :attr:`resource_version`: the watch has not yet delivered the events
        of other objects up to that version.
        """
        return self._apply("MODIFIED", obj)

    def after_error(self, code: int | None) -> Literal["relist", "resume"]:
        """What to do after the watch failed with HTTP ``code`` (None: a connection failure).

        410 Gone means the server no longer has the history from our version: list again.
        Anything else: watch again from where we were.
        """
        if code == GONE:
            self.resource_version = None
            return "relist"
        return "relist" if self.needs_list else "resume"

    def _apply(self, event_type: str, obj: Obj) -> Change | None:
        name = str(obj["metadata"]["name"])
        rv = _rv(obj)
        cur = self._objects.get(name)
        if cur is not None and not newer(rv, _rv(cur)):
            return None  # a repeat, or older than what we hold
        tomb = self._tombstones.get(name)
        if cur is None and tomb is not None and not newer(rv, tomb):
            return None  # an event from before the object was deleted
        if event_type == "DELETED":
            self._tombstones[name] = rv
            if cur is None:
                return None
            del self._objects[name]
            return Change("DELETED", name, obj)
        self._tombstones.pop(name, None)
        self._objects[name] = obj
        return Change("ADDED" if cur is None else "MODIFIED", name, obj)

    def _advance(self, rv: str) -> None:
        if rv and (self.resource_version is None or newer(rv, self.resource_version)):
            self.resource_version = rv


# ---- the I/O shell --------------------------------------------------------------------------------


Callback = Callable[[], None]


class SharedWatch:
    """The watch of one (namespace, kind), in a thread, feeding a :class:`WatchCache`.

    :meth:`start` lists once, in the caller's thread, so a missing permission or an
    unreachable server fails there with a clear error; the thread then watches from the list's
    resourceVersion, re-lists on 410 Gone and reconnects with exponential backoff after other
    failures. The server ends each watch after ``timeout_seconds``, and the thread resumes from
    the cache's version: nothing is missed, nothing is read twice.
    """

    def __init__(self, objects: KubernetesObjects, kind: Kind, namespace: str, *,
                 timeout_seconds: int = 300, backoff: tuple[float, float] = (0.2, 10.0)) -> None:
        self.objects = objects
        self.kind = kind
        self.namespace = namespace
        self.timeout_seconds = timeout_seconds
        self.backoff = backoff
        self.cache = WatchCache()
        self.relists = 0
        self._lock = threading.Lock()
        self._callbacks: dict[str, list[Callback]] = {}
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._response: Any = None
        self.streaming = threading.Event()
        """Set while a watch request is open (for health checks and tests)."""
        self._watch: Any = None

    def start(self) -> SharedWatch:
        """List, then watch in a daemon thread; raise a plait error if the list is refused."""
        self._relist()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"plait-watch-{self.namespace}-{self.kind.plural}")
        self._thread.start()
        return self

    def stop(self) -> None:
        """End the watch and its thread."""
        self._stopped.set()
        if self._watch is not None:
            self._watch.stop()
        _interrupt(self._response)
        if self._thread is not None:
            self._thread.join(5)

    def get(self, name: str) -> Obj | None:
        """The latest version of the object seen, or None; no API request."""
        with self._lock:
            return self.cache.get(name)

    def observe(self, obj: Obj) -> None:
        """Take an object just read or created (e.g. what create_or_attach returned)."""
        with self._lock:
            change = self.cache.observe(obj)
        if change is not None:
            self._dispatch([change])

    def on_change(self, name: str, callback: Callback) -> Callable[[], None]:
        """Call ``callback()`` (from the watch thread) whenever ``name`` changes; returns the undo."""
        with self._lock:
            self._callbacks.setdefault(name, []).append(callback)

        def remove() -> None:
            with self._lock:
                callbacks = self._callbacks.get(name, [])
                if callback in callbacks:
                    callbacks.remove(callback)
                if not callbacks:
                    self._callbacks.pop(name, None)

        return remove

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        from kubernetes.client.rest import ApiException

        failures = 0
        while not self._stopped.is_set():
            try:
                if self.cache.needs_list:
                    self._relist()
                self._stream()
                failures = 0
            except ApiException as exc:
                if self._stopped.is_set():
                    return
                with self._lock:
                    action = self.cache.after_error(exc.status)
                if action == "relist":
                    log.info("watch of %s in %s expired (410 Gone): listing again",
                             self.kind.resource, self.namespace)
                    continue
                failures += 1
                self._pause(failures, exc)
            except Exception as exc:  # a connection failure, a plait error from the list
                if self._stopped.is_set():
                    return
                with self._lock:
                    self.cache.after_error(None)
                failures += 1
                self._pause(failures, exc)

    def _pause(self, failures: int, exc: BaseException) -> None:
        delay = min(self.backoff[1], self.backoff[0] * 2 ** (failures - 1))
        log.warning("watch of %s in %s failed (%s); reconnecting in %.1fs",
                    self.kind.resource, self.namespace, exc, delay)
        self._stopped.wait(delay)

    def _relist(self) -> None:
        items, rv = self.objects.list_objects(self.kind, self.namespace)
        with self._lock:
            changes = self.cache.replace(items, rv)
            self.relists += 1
        self._dispatch(changes)

    def _stream(self) -> None:
        from kubernetes.watch import Watch

        base = self.objects.watch_function(self.kind, self.namespace)

        def watch_or_list(**kwargs: Any) -> Any:
            self._response = base(**kwargs)
            self.streaming.set()
            return self._response

        watch = Watch()
        self._watch = watch
        with self._lock:
            rv = self.cache.resource_version
        try:
            self._follow(watch, watch_or_list, rv)
        finally:
            self.streaming.clear()

    def _follow(self, watch: Any, watch_or_list: Callable[..., Any], rv: str | None) -> None:
        # timeout_seconds also turns off Watch's own silent retry after 410: we re-list instead.
        for event in watch.stream(watch_or_list, resource_version=rv,
                                  timeout_seconds=self.timeout_seconds, allow_watch_bookmarks=True,
                                  _request_timeout=(10, self.timeout_seconds + 30)):
            if self._stopped.is_set():
                return
            obj = event.get("raw_object") or event.get("object")
            if not isinstance(obj, dict):
                continue
            with self._lock:
                change = self.cache.apply(str(event["type"]), obj)
            if change is not None:
                self._dispatch([change])

    def _dispatch(self, changes: list[Change]) -> None:
        for change in changes:
            with self._lock:
                callbacks = list(self._callbacks.get(change.name, ()))
            for callback in callbacks:
                try:
                    callback()
                except Exception:  # one attempt's notify must not stop everyone's watch
                    log.exception("callback for %s %s failed", self.kind.kind, change.name)


def _interrupt(response: Any) -> None:
    """Unblock a thread reading ``response``: shut its socket down (closing would not wake it)."""
    sock = getattr(getattr(response, "connection", None), "sock", None)
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: the reader has woken


class Watches:
    """One :class:`SharedWatch` per (namespace, kind), started on first use."""

    def __init__(self, objects: KubernetesObjects, **options: Any) -> None:
        self.objects = objects
        self.options = options
        self._lock = threading.Lock()
        self._watches: dict[tuple[str, Kind], SharedWatch] = {}

    def watch(self, kind: Kind, namespace: str) -> SharedWatch:
        """The shared watch of ``kind`` in ``namespace``, listing and starting it if new."""
        with self._lock:
            found = self._watches.get((namespace, kind))
            if found is None:
                found = SharedWatch(self.objects, kind, namespace, **self.options).start()
                self._watches[(namespace, kind)] = found
            return found

    def close(self) -> None:
        """Stop every watch."""
        with self._lock:
            watches, self._watches = list(self._watches.values()), {}
        for watch in watches:
            watch.stop()
