"""The emulated API server's state: the store, watch history, quota, and the in-process hooks."""

from __future__ import annotations

import collections
import copy
import random
import string
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from fractions import Fraction
from http.server import ThreadingHTTPServer
from typing import Any

from plait.testing.kubeapi.errors import (
    ApiStatusError,
    _already_exists,
    _bad_request,
    _conflict,
    _details,
    _forbidden,
    _no_such_resource,
    _not_found,
)
from plait.testing.kubeapi.handler import _make_handler
from plait.testing.kubeapi.patch import _merge_patch
from plait.testing.kubeapi.quantity import Quantity, _pretty, pod_usage
from plait.testing.kubeapi.resources import _CORE, _CUSTOM, _TERMINAL, Obj, ResourceType
from plait.testing.kubeapi.selector import _parse_field_selector, _parse_label_selector, _Selector
from plait.testing.kubeapi.watch import Subscription, WatchEvent


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class KubeAPI:
    """The emulated API server: state, an HTTP front, and in-process hooks."""

    def __init__(self, *, history: int = 1000, namespaces: tuple[str, ...] = ("default",),
                 graceful_pods: bool = False) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._types: dict[tuple[str, str, str], ResourceType] = {}  # (group, version, plural)
        self._by_key: dict[str, ResourceType] = {}
        for rt in _CORE + _CUSTOM:
            self.add_resource(rt)
        self._objects: dict[str, dict[tuple[str, str], Obj]] = collections.defaultdict(dict)
        self._rv = 0
        self._history: collections.deque[WatchEvent] = collections.deque(maxlen=history)
        self._compacted = 0  # events at or below this resourceVersion are forgotten
        self._subs: list[Subscription] = []
        self._logs: dict[tuple[str, str, str], str] = {}
        self.graceful_pods = graceful_pods
        self.requests: collections.Counter[tuple[str, str]] = collections.Counter()
        self.created: collections.Counter[str] = collections.Counter()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._watch_epoch = 0  # drop_watches() moves it on; an open watch of an older one is cut
        self._open_watches: collections.Counter[int] = collections.Counter()  # by epoch
        self._refusing_watches = False
        for ns in namespaces:
            self.create("namespaces", {"metadata": {"name": ns}})

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> KubeAPI:
        """Serve on 127.0.0.1 at a free port (see :attr:`url`)."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        self._stopping = False
        self._thread = threading.Thread(target=server.serve_forever, name="kubeapi",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; open watches and log streams end."""
        with self._lock:
            self._stopping = True
            self._changed.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> KubeAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("KubeAPI is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def client_configuration(self) -> Any:
        """A ``kubernetes.client.Configuration`` pointing at this server."""
        from kubernetes import client

        config = client.Configuration()
        config.host = self.url
        return config

    def api_client(self) -> Any:
        """A real ``kubernetes.client.ApiClient`` talking to this server."""
        from kubernetes import client

        return client.ApiClient(self.client_configuration())

    # ---- kinds --------------------------------------------------------------------------

    def add_resource(self, rt: ResourceType) -> None:
        with self._lock:
            self._types[(rt.group, rt.version, rt.plural)] = rt
            self._by_key[rt.key] = rt

    def install_crd(self, crd: Obj) -> list[ResourceType]:
        """Serve the kinds a CustomResourceDefinition manifest declares, every served version."""
        spec = crd["spec"]
        added = []
        for version in spec.get("versions") or [{"name": spec.get("version"), "served": True}]:
            if not version.get("served", True):
                continue
            rt = ResourceType(
                spec["group"], version["name"], spec["names"]["plural"], spec["names"]["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                status_subresource="status" in (version.get("subresources")
                                                 or spec.get("subresources") or {}))
            self.add_resource(rt)
            added.append(rt)
        return added

    def resource(self, key: str) -> ResourceType:
        try:
            return self._by_key[key]
        except KeyError:
            raise KeyError(f"unknown resource {key!r}; known: {sorted(self._by_key)}") from None

    def _lookup(self, group: str, version: str, plural: str) -> ResourceType:
        rt = self._types.get((group, version, plural))
        if rt is None:
            raise _no_such_resource()
        return rt

    # ---- state, in process --------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    def get(self, resource: str, name: str, namespace: str | None = None) -> Obj | None:
        """A copy of the stored object, or None."""
        rt = self.resource(resource)
        with self._lock:
            obj = self._objects[rt.key].get((namespace or "" if rt.namespaced else "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def objects(self, resource: str, namespace: str | None = None,
             label_selector: str | None = None, field_selector: str | None = None) -> list[Obj]:
        rt = self.resource(resource)
        sel = _Selector(namespace if rt.namespaced else None,
                        _parse_label_selector(label_selector),
                        _parse_field_selector(field_selector, rt))
        with self._lock:
            return [copy.deepcopy(o) for o in self._select(rt, sel)]

    def create(self, resource: str, obj: Obj, namespace: str | None = None) -> Obj:
        rt = self.resource(resource)
        ns = namespace or (obj.get("metadata") or {}).get("namespace")
        if rt.namespaced and not ns:
            raise _bad_request("a namespace is needed to create a namespaced object")
        return self._create(rt, ns if rt.namespaced else None, obj)

    def patch_status(self, resource: str, name: str, status: Obj,
                     namespace: str | None = None) -> Obj:
        """Merge ``status`` into the object's status (a kubelet's or an operator's update)."""
        rt = self.resource(resource)
        with self._lock:
            cur = self._must_get(rt, namespace, name)
            new = copy.deepcopy(cur)
            new["status"] = _merge_patch(cur.get("status") or {}, status)
            return self._update(rt, namespace, name, new, subresource="status")

    def set_status(self, resource: str, name: str, status: Obj,
                   namespace: str | None = None) -> Obj:
        """Replace the object's status."""
        rt = self.resource(resource)
        with self._lock:
            cur = self._must_get(rt, namespace, name)
            new = copy.deepcopy(cur)
            new["status"] = copy.deepcopy(status)
            return self._update(rt, namespace, name, new, subresource="status")

    def patch(self, resource: str, name: str, patch: Obj, namespace: str | None = None) -> Obj:
        """Merge-patch the object through the main resource (status is left alone)."""
        rt = self.resource(resource)
        with self._lock:
            cur = self._must_get(rt, namespace, name)
            return self._update(rt, namespace, name, _merge_patch(cur, patch))

    def delete(self, resource: str, name: str, namespace: str | None = None,
               propagation: str = "Background", grace_period_seconds: int | None = None) -> Obj:
        rt = self.resource(resource)
        return self._delete(rt, namespace, name, propagation, grace_period_seconds)

    def set_log(self, namespace: str, pod: str, text: str, container: str | None = None) -> None:
        """Set a container's log text (the pod's only or first container by default)."""
        with self._lock:
            self._logs[(namespace, pod, container or self._default_container(namespace, pod))] = text
            self._changed.notify_all()

    def append_log(self, namespace: str, pod: str, text: str,
                   container: str | None = None) -> None:
        with self._lock:
            key = (namespace, pod, container or self._default_container(namespace, pod))
            self._logs[key] = self._logs.get(key, "") + text
            self._changed.notify_all()

    def subscribe(self, resource: str | None = None, *, replay: bool = False) -> Subscription:
        """A queue of every change from now on (of one resource, or all). With ``replay``, the
        objects that exist already come first, as ADDED, with nothing lost in between (what an
        informer's list-then-watch gives a controller, such as a simulated kubelet)."""
        with self._lock:
            sub = Subscription(self, resource)
            if replay:
                for obj in self.objects(resource) if resource else []:
                    sub._offer(WatchEvent("ADDED", resource or "", obj, self.resource_version))
            self._subs.append(sub)
            return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def wait(self, condition: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Block until ``condition()`` (called under the lock after each change) holds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def compact(self) -> None:
        """Forget the watch history, as etcd compaction does: older watches get 410 Gone."""
        with self._lock:
            self._history.clear()
            self._compacted = self._rv

    def drop_watches(self, *, refuse: bool = False, timeout: float = 5.0) -> int:
        """Cut every open watch connection; return how many were cut, once they all are.

        Each is ended without the closing chunk, so the client sees a broken connection (not
        the end of a ``timeoutSeconds`` watch) and must watch again from its resourceVersion.
        With ``refuse``, watch requests are answered 503 ServiceUnavailable until
        :meth:`accept_watches` (lists, gets and every other verb still work): what changes
        meanwhile is what a client must catch up on when it reconnects.
        """
        with self._changed:
            self._watch_epoch += 1
            self._refusing_watches = refuse
            epoch = self._watch_epoch
            cut = sum(n for e, n in self._open_watches.items() if e < epoch)
            self._changed.notify_all()
            deadline = time.monotonic() + timeout
            while any(n for e, n in self._open_watches.items() if e < epoch):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"open watches were not cut within {timeout:g}s")
                self._changed.wait(left)
            return cut

    def open_watches(self) -> int:
        """How many watch connections are open now (a client may have read a watch's end
        before the server finished closing it)."""
        with self._changed:
            return sum(self._open_watches.values())

    def accept_watches(self) -> None:
        """Serve watch requests again after :meth:`drop_watches` with ``refuse``."""
        with self._lock:
            self._refusing_watches = False

    # ---- the store ----------------------------------------------------------------------

    def _default_container(self, namespace: str, pod: str) -> str:
        obj = self._objects["pods"].get((namespace, pod))
        containers = ((obj or {}).get("spec") or {}).get("containers") or []
        return str(containers[0].get("name")) if containers else ""

    def _must_get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        obj = self._objects[rt.key].get((namespace or "" if rt.namespaced else "", name))
        if obj is None:
            raise _not_found(rt, name)
        return obj

    def _select(self, rt: ResourceType, sel: _Selector) -> list[Obj]:
        items = self._objects[rt.key]
        return [items[k] for k in sorted(items) if sel.matches(items[k])]

    def _emit(self, rt: ResourceType, kind: str, obj: Obj, old: Obj | None = None) -> None:
        event = WatchEvent(kind, rt.key, copy.deepcopy(obj), self._rv,
                           copy.deepcopy(old) if old is not None else None)
        if self._history.maxlen and len(self._history) == self._history.maxlen:
            self._compacted = self._history[0].resource_version
        self._history.append(event)
        for sub in list(self._subs):
            sub._offer(event)
        self._changed.notify_all()

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _create(self, rt: ResourceType, namespace: str | None, body: Obj) -> Obj:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise _bad_request("metadata must be an object")
        with self._lock:
            if rt.namespaced:
                if meta.get("namespace") and meta["namespace"] != namespace:
                    raise _bad_request("the namespace of the provided object does not match "
                                       "the namespace sent on the request")
                if ("", namespace) not in self._objects["namespaces"]:
                    raise _not_found(self._by_key["namespaces"], str(namespace))
            name = meta.get("name")
            if not name and meta.get("generateName"):
                while True:
                    name = meta["generateName"] + "".join(
                        random.choices(string.ascii_lowercase + string.digits, k=5))
                    if (namespace or "", name) not in self._objects[rt.key]:
                        break
            if not name:
                raise ApiStatusError(422, "Invalid",
                                     f'{rt.kind} "" is invalid: metadata.name: Required value: '
                                     "name or generateName is required",
                                     {"kind": rt.kind, "causes": [
                                         {"reason": "FieldValueRequired",
                                          "message": "Required value: name or generateName is "
                                                     "required", "field": "metadata.name"}]})
            key = (namespace or "", name)
            if key in self._objects[rt.key]:
                raise _already_exists(rt, name)
            if rt.key == "pods":
                self._admit_pod(rt, str(namespace), name, obj)
            obj["apiVersion"] = rt.api_version
            obj["kind"] = rt.kind
            meta["name"] = name
            if rt.namespaced:
                meta["namespace"] = namespace
            else:
                meta.pop("namespace", None)
            for transient in ("deletionTimestamp", "deletionGracePeriodSeconds"):
                meta.pop(transient, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _now()
            meta["generation"] = 1
            if rt.status_subresource:
                obj.pop("status", None)
            if rt.key == "pods":
                obj["status"] = {"phase": "Pending"}
            elif rt.key == "namespaces":
                meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
                obj.setdefault("spec", {"finalizers": ["kubernetes"]})
                obj["status"] = {"phase": "Active"}
            elif rt.key == "resourcequotas":
                obj["status"] = {"hard": dict((obj.get("spec") or {}).get("hard") or {}),
                                 "used": {}}
            meta["resourceVersion"] = self._next_rv()
            self._objects[rt.key][key] = obj
            self.created[rt.kind] += 1
            self._emit(rt, "ADDED", obj)
            if rt.key in ("pods", "resourcequotas"):
                self._refresh_quotas(str(namespace))
            return copy.deepcopy(obj)

    def _update(self, rt: ResourceType, namespace: str | None, name: str, body: Obj,
                subresource: str | None = None) -> Obj:
        with self._lock:
            cur = self._must_get(rt, namespace, name)
            meta = body.get("metadata") or {}
            if meta.get("name") not in (None, name):
                raise _bad_request(f'the name of the object ({meta.get("name")}) does not match '
                                   f"the name on the URL ({name})")
            want_rv = meta.get("resourceVersion")
            if want_rv not in (None, "") and str(want_rv) != cur["metadata"]["resourceVersion"]:
                raise _conflict(rt, name)
            if subresource == "status":
                new = copy.deepcopy(cur)
                new["status"] = copy.deepcopy(body.get("status"))
                if new["status"] is None:
                    new.pop("status")
            else:
                new = copy.deepcopy(body)
                new["apiVersion"], new["kind"] = rt.api_version, rt.kind
                new_meta = new.setdefault("metadata", {})
                for fixed in ("name", "namespace", "uid", "creationTimestamp", "generation",
                              "deletionTimestamp", "deletionGracePeriodSeconds"):
                    if fixed in cur["metadata"]:
                        new_meta[fixed] = cur["metadata"][fixed]
                    else:
                        new_meta.pop(fixed, None)
                if rt.status_subresource:
                    if "status" in cur:
                        new["status"] = copy.deepcopy(cur["status"])
                    else:
                        new.pop("status", None)

                def body_of(o: Obj) -> Obj:
                    return {k: v for k, v in o.items() if k not in ("metadata", "status")}

                if body_of(new) != body_of(cur):
                    new_meta["generation"] = int(cur["metadata"].get("generation", 1)) + 1
            new["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            if new == cur:
                return copy.deepcopy(cur)  # a no-op update writes nothing, as on a real server
            new["metadata"]["resourceVersion"] = self._next_rv()
            key = (namespace or "" if rt.namespaced else "", name)
            self._objects[rt.key][key] = new
            self._emit(rt, "MODIFIED", new, cur)
            if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
                self._remove(rt, key)
            elif rt.key == "pods":
                self._refresh_quotas(str(namespace))
            return copy.deepcopy(new)

    def _remove(self, rt: ResourceType, key: tuple[str, str]) -> Obj:
        obj = self._objects[rt.key].pop(key)
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._emit(rt, "DELETED", obj)
        if rt.key == "pods":
            for log_key in [k for k in self._logs if k[:2] == key]:
                del self._logs[log_key]
            self._refresh_quotas(key[0])
        return obj

    def _dependents(self, owner: Obj) -> list[tuple[ResourceType, tuple[str, str]]]:
        uid = owner["metadata"]["uid"]
        ns = owner["metadata"].get("namespace")
        found = []
        for key, items in self._objects.items():
            rt = self._by_key[key]
            for okey in sorted(items):
                o = items[okey]
                if ns is not None and o["metadata"].get("namespace") != ns:
                    continue
                if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or []):
                    found.append((rt, okey))
        return found

    def _delete(self, rt: ResourceType, namespace: str | None, name: str,
                propagation: str | None = None, grace: int | None = None) -> Obj:
        propagation = propagation or "Background"
        if propagation not in ("Background", "Foreground", "Orphan"):
            raise ApiStatusError(422, "Invalid",
                                 f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: '
                                 f'Unsupported value: "{propagation}": supported values: '
                                 '"Foreground", "Background", "Orphan", "nil"')
        with self._lock:
            cur = self._must_get(rt, namespace, name)
            key = (namespace or "" if rt.namespaced else "", name)
            meta = cur["metadata"]
            if rt.key == "namespaces":
                for other_key, items in self._objects.items():
                    other = self._by_key[other_key]
                    if other.namespaced:
                        for okey in [k for k in sorted(items) if k[0] == name]:
                            if okey in items:
                                self._delete(other, name, okey[1], "Background", 0)
            if (rt.key == "pods" and self.graceful_pods and grace != 0
                    and (cur.get("spec") or {}).get("nodeName")):
                if meta.get("deletionTimestamp"):
                    return copy.deepcopy(cur)
                marked = copy.deepcopy(cur)
                marked["metadata"]["deletionTimestamp"] = _now()
                marked["metadata"]["deletionGracePeriodSeconds"] = (
                    grace if grace is not None else
                    int((cur.get("spec") or {}).get("terminationGracePeriodSeconds", 30)))
                marked["metadata"]["resourceVersion"] = self._next_rv()
                self._objects[rt.key][key] = marked
                self._emit(rt, "MODIFIED", marked, cur)
                return copy.deepcopy(marked)
            if propagation == "Foreground":
                marked = copy.deepcopy(cur)
                marked["metadata"].setdefault("deletionTimestamp", _now())
                marked["metadata"].setdefault("deletionGracePeriodSeconds", 0)
                finalizers = marked["metadata"].setdefault("finalizers", [])
                if "foregroundDeletion" not in finalizers:
                    finalizers.append("foregroundDeletion")
                marked["metadata"]["resourceVersion"] = self._next_rv()
                self._objects[rt.key][key] = marked
                self._emit(rt, "MODIFIED", marked, cur)
                reply = copy.deepcopy(marked)
                for drt, dkey in self._dependents(marked):  # the garbage collector's work:
                    dep = self._objects[drt.key].get(dkey)  # foreground only where it has its own
                    if dep is not None:
                        self._delete(drt, dkey[0] or None, dkey[1],
                                     "Foreground" if self._dependents(dep) else "Background", 0)
                done = copy.deepcopy(self._objects[rt.key][key])
                done["metadata"]["finalizers"] = [
                    f for f in done["metadata"]["finalizers"] if f != "foregroundDeletion"]
                if not done["metadata"]["finalizers"]:
                    del done["metadata"]["finalizers"]
                self._update(rt, namespace, name, done)
                return reply
            if meta.get("finalizers"):
                if meta.get("deletionTimestamp"):
                    return copy.deepcopy(cur)
                marked = copy.deepcopy(cur)
                marked["metadata"]["deletionTimestamp"] = _now()
                marked["metadata"]["deletionGracePeriodSeconds"] = 0
                marked["metadata"]["resourceVersion"] = self._next_rv()
                self._objects[rt.key][key] = marked
                self._emit(rt, "MODIFIED", marked, cur)
                return copy.deepcopy(marked)
            dependents = self._dependents(cur)
            gone = self._remove(rt, key)
            for drt, dkey in dependents:
                if dkey not in self._objects[drt.key]:
                    continue
                if propagation == "Orphan":
                    dep = copy.deepcopy(self._objects[drt.key][dkey])
                    refs = [r for r in dep["metadata"].get("ownerReferences") or []
                            if r.get("uid") != meta["uid"]]
                    dep["metadata"]["ownerReferences"] = refs
                    if not refs:
                        del dep["metadata"]["ownerReferences"]
                    self._update(drt, dkey[0] or None, dkey[1], dep)
                else:
                    self._delete(drt, dkey[0] or None, dkey[1], "Background", 0)
            if rt.returns_deleted_object:
                return copy.deepcopy(gone)
            details = _details(rt, name)
            details["uid"] = meta["uid"]
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                    "details": details}

    # ---- quota ----------------------------------------------------------------------------

    def _namespace_usage(self, namespace: str, skip: str | None = None) -> dict[str, Quantity]:
        used: dict[str, Quantity] = {}
        for (ns, name), pod in sorted(self._objects["pods"].items()):
            if ns != namespace or name == skip:
                continue
            if (pod.get("status") or {}).get("phase") in _TERMINAL:
                continue
            for k, q in pod_usage(pod).items():
                used[k] = used[k] + q if k in used else q
        return used

    def _admit_pod(self, rt: ResourceType, namespace: str, name: str, pod: Obj) -> None:
        quotas = [q for (ns, _), q in sorted(self._objects["resourcequotas"].items())
                  if ns == namespace]
        if not quotas:
            return
        requested_all = pod_usage(pod)
        used_all = self._namespace_usage(namespace)
        for quota in quotas:
            hard = {k: Quantity.parse(v)
                    for k, v in ((quota.get("spec") or {}).get("hard") or {}).items()}
            requested = {k: q for k, q in requested_all.items() if k in hard}
            exceeded = [k for k, q in requested.items()
                        if (used_all.get(k, Quantity(Fraction(0))) + q).value > hard[k].value]
            if exceeded:
                zero = Quantity(Fraction(0))
                raise _forbidden(rt, name, "exceeded quota: {}, requested: {}, used: {}, "
                                 "limited: {}".format(
                                     quota["metadata"]["name"],
                                     _pretty({k: requested[k] for k in exceeded}),
                                     _pretty({k: used_all.get(k, zero) for k in exceeded}),
                                     _pretty({k: hard[k] for k in exceeded})))

    def _refresh_quotas(self, namespace: str) -> None:
        """What the quota controller does: keep each quota's status.hard and status.used."""
        rq = self._by_key["resourcequotas"]
        used_all = self._namespace_usage(namespace)
        for key in sorted(self._objects["resourcequotas"]):
            if key[0] != namespace:
                continue
            quota = self._objects["resourcequotas"][key]
            hard = dict((quota.get("spec") or {}).get("hard") or {})
            used = {k: str(used_all.get(k, Quantity(Fraction(0)))) for k in hard}
            status = {"hard": hard, "used": used}
            if quota.get("status") != status:
                new = copy.deepcopy(quota)
                new["status"] = status
                new["metadata"]["resourceVersion"] = self._next_rv()
                self._objects["resourcequotas"][key] = new
                self._emit(rq, "MODIFIED", new, quota)

    # ---- HTTP ----------------------------------------------------------------------------

    def _count(self, verb: str, resource: str) -> None:
        with self._lock:
            self.requests[(verb, resource)] += 1
            self._changed.notify_all()
