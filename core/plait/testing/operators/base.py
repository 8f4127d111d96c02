"""What the simulated operators share: a controller on the emulator's subscription."""

from __future__ import annotations

import copy
import threading
import time
from datetime import UTC, datetime
from typing import Any, Self

from plait.testing.kubeapi import ApiStatusError, KubeAPI, WatchEvent

Obj = dict[str, Any]

_TICK = 0.2  # how often timers (grace periods, TTLs) are looked at


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _owner_reference(obj: Obj) -> Obj:
    meta = obj["metadata"]
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}


def _owned_by(obj: Obj, owner: Obj) -> bool:
    uid = owner["metadata"]["uid"]
    return any(r.get("uid") == uid and r.get("controller")
               for r in obj["metadata"].get("ownerReferences") or [])


class _Operator:
    """A controller on the emulator's subscription: reconcile an owner on each change."""

    kind = ""
    resource = ""

    def __init__(self, api: KubeAPI) -> None:
        self.api = api
        self.created: list[Obj] = []
        """Every object this operator created, as it sent it to the API server."""
        self.errors: list[BaseException] = []
        self._sub: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._timers: dict[tuple[str, str], float] = {}  # (namespace, name) -> monotonic time

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> Self:
        self._stopping.clear()
        self._sub = self.api.subscribe()  # every kind: the owner's and the pods' events
        self._thread = threading.Thread(target=self._loop, name=f"operator-{self.kind}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop reconciling; raise the first unexpected error a reconcile met, if any."""
        self._stopping.set()
        if self._sub is not None:
            self._sub.close()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if self.errors:
            raise RuntimeError(f"the simulated {self.kind} operator failed") from self.errors[0]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- the loop -----------------------------------------------------------------------

    def _loop(self) -> None:
        for obj in self.api.objects(self.resource):  # what exists already, after subscribing
            self._reconcile_safely(obj["metadata"]["namespace"], obj["metadata"]["name"])
        while not self._stopping.is_set():
            event = self._sub.get(timeout=_TICK)
            try:
                keys = self._keys(event) if event is not None else []
            except Exception as e:  # noqa: BLE001 - kept and raised by stop(), never lost
                self.errors.append(e)
                keys = []
            for key in keys:
                self._reconcile_safely(*key)
            now = time.monotonic()
            for key, due in list(self._timers.items()):
                if due <= now:
                    del self._timers[key]
                    self._reconcile_safely(*key)

    def _keys(self, event: WatchEvent) -> list[tuple[str, str]]:
        meta = event.object.get("metadata") or {}
        if event.resource == self.resource:
            return [(meta.get("namespace", ""), meta["name"])]
        if event.resource in ("pods", "services"):
            return [(meta.get("namespace", ""), r["name"]) for r in meta.get("ownerReferences") or []
                    if r.get("kind") == self.kind and r.get("controller")]
        return []

    def _reconcile_safely(self, namespace: str, name: str) -> None:
        try:
            self.reconcile(namespace, name)
        except ApiStatusError as e:
            if e.code not in (404, 409):  # gone or changed meanwhile: a later event says so
                self._timers[(namespace, name)] = time.monotonic() + _TICK
        except Exception as e:  # noqa: BLE001 - kept and raised by stop(), never lost
            self.errors.append(e)

    def _after(self, namespace: str, name: str, seconds: float) -> None:
        due = time.monotonic() + max(seconds, 0.0)
        key = (namespace, name)
        self._timers[key] = min(due, self._timers.get(key, due))

    def reconcile(self, namespace: str, name: str) -> None:
        raise NotImplementedError

    def _create(self, resource: str, obj: Obj, namespace: str) -> Obj:
        created = self.api.create(resource, obj, namespace)
        self.created.append(copy.deepcopy(obj))
        return created

