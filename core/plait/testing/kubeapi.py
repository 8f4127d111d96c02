"""A small, stateful Kubernetes API server for tests, reached by the real ``kubernetes`` client.

No API server can be installed where plait's tests run, so this module serves the part of the
Kubernetes REST API that plait's Kubernetes platform and its plugins use, over HTTP on
127.0.0.1, from memory::

    with KubeAPI() as kube:
        core = kubernetes.client.CoreV1Api(kube.api_client())
        core.create_namespaced_pod("default", {...})        # 201, as a real server answers
        kube.patch_status("pods", "p", {"phase": "Running"}, namespace="default")  # a kubelet
        assert kube.created["Pod"] == 1

Why not kmock (PyPI ``kmock`` 0.8, read before writing this): its Kubernetes emulator stores
objects and replays them, but its lists carry ``resourceVersion: "..."``, a watch always
replays every object as ADDED (no resourceVersion, so no 410 Gone), it fills no uid,
creationTimestamp, resourceVersion or generation, has no label or field selectors, no status
subresource, no owner references or propagation, no quota and no logs, and it runs on
aiohttp/asyncio with four more dependencies. Those are exactly the behaviours the platform
must be tested against, so this is a small one of our own on ``http.server``.

What it emulates, with the status codes and ``Status`` bodies of a real API server (learnt
from the apiserver sources and the client's ``watch.py``), so the real client parses them:

- core v1 ``pods`` (``status`` and ``log`` subresources), ``services``, ``secrets``,
  ``configmaps``, ``resourcequotas`` (with ``status``), ``events``; cluster-scoped
  ``namespaces``; custom resources by group/version/plural: ``sparkapplications``
  (sparkoperator.k8s.io/v1beta2) and ``pytorchjobs`` (kubeflow.org/v1) are installed, and
  :meth:`KubeAPI.install_crd` adds any CRD manifest (e.g. those in ``shared/crds``).
- create: 201; ``generateName``; 409 AlreadyExists; 404 when the namespace does not exist;
  uid, creationTimestamp, resourceVersion and generation filled; a pod's status starts as
  ``{"phase": "Pending"}``; a status sent with a create is dropped where the kind has a status
  subresource, as the real strategies do.
- get (404 NotFound), list (``kind: XList``, the current resourceVersion) with
  ``labelSelector`` (``=``, ``==``, ``!=``, ``in``, ``notin``, ``key``, ``!key``) and
  ``fieldSelector`` (``metadata.name``, ``metadata.namespace``; for pods also
  ``spec.nodeName``, ``status.phase`` and the other fields the real server indexes), across
  namespaces too.
- watch (``?watch=true``): without a resourceVersion (or with "0") synthetic ADDED events for
  what exists, then changes; from ``resourceVersion=N`` every change after N, in order; when
  N is older than the retained history (``history`` events; :meth:`KubeAPI.compact` forgets
  all of it, as etcd compaction does) an ERROR event carrying a 410 Expired Status, which the
  client's ``Watch.stream`` turns into ``ApiException(410)``. An object that stops (starts)
  matching the selectors is sent as DELETED (ADDED). ``timeoutSeconds`` ends the stream.
- replace (409 Conflict on a stale ``metadata.resourceVersion``), patch: merge patch, JSON
  patch, and strategic merge patch for core kinds (maps merged, lists of containers, env,
  volumes, ports, conditions, ownerReferences, ... merged by their key, finalizers unioned);
  strategic merge on a custom resource is 415, as on a real server. Updates through the main
  resource leave ``status`` alone; ``.../status`` changes only ``status``. ``generation``
  grows when anything outside metadata and status changes.
- delete: 200 with the object for pods, services and namespaces, a ``Status`` Success for
  the rest (what ``ReturnDeletedObject`` decides in the apiserver); ``propagationPolicy``
  Background (the default: owner first, then every object whose ownerReferences name its
  uid), Foreground (the owner gets deletionTimestamp and the ``foregroundDeletion``
  finalizer, its dependents go, then it goes; the reply is the owner as it was marked) and
  Orphan; finalizers hold an object (deletionTimestamp set) until an update clears them;
  ``deletecollection`` with selectors; deleting a namespace deletes what is in it.
- ResourceQuota admission for pods: ``pods``, ``count/pods``, ``cpu``, ``memory``,
  ``requests.*`` (extended resources such as ``requests.nvidia.com/gpu`` too) and
  ``limits.cpu``/``limits.memory``; a pod that would exceed a quota is refused with 403
  Forbidden and the apiserver's message (``pods "p" is forbidden: exceeded quota: q,
  requested: requests.cpu=2, used: requests.cpu=1, limited: requests.cpu=2``). Pods in phase
  Succeeded or Failed stop counting, and ``status.used`` is kept current as the quota
  controller would.
- pod logs: the text a test or a simulated kubelet set (:meth:`KubeAPI.set_log`,
  :meth:`KubeAPI.append_log`), per container, with ``container``, ``tailLines`` and
  ``follow`` (streams appended text until the container terminates, the pod reaches a
  terminal phase or goes); the 400s for a missing or wrong container name and for a
  container still waiting to start.
- watch outages: :meth:`KubeAPI.drop_watches` cuts every open watch connection mid-stream
  (no closing chunk, as a restarting API server or a load balancer's idle timeout does), and
  with ``refuse=True`` answers new watch requests 503 ServiceUnavailable until
  :meth:`KubeAPI.accept_watches`, so a test chooses what changes while its clients are away.
- for tests: ``requests[(verb, resource)]`` counts HTTP requests (``("create", "pods")``,
  ``("watch", "pods")``, ``("get", "pods/log")``, ``("patch", "sparkapplications.
  sparkoperator.k8s.io")``); ``created[kind]`` counts objects ever created. For a simulated
  kubelet or operator, no HTTP needed: :meth:`get`, :meth:`objects`, :meth:`create`,
  :meth:`patch_status`, :meth:`set_status`, :meth:`delete`, :meth:`subscribe` (a queue of
  every change), :meth:`wait` (block until a condition on the state holds). With
  ``graceful_pods=True`` deleting a pod bound to a node (``spec.nodeName``) only marks it, as
  a real server does, until the kubelet deletes it with ``grace_period_seconds=0``.

What it does NOT emulate (a test that needs one of these must say so and use something else):
authentication and RBAC (every request is allowed); admission other than namespace existence
and ResourceQuota (no LimitRange, no quota "must specify" refusals, no webhooks, no Pod
Security); validation of objects against their schemas (``plait.testing.manifests`` does
that) and defaulting (no restartPolicy, dnsPolicy, clusterIP, ... filled); pod spec
immutability; a scheduler, kubelets, controllers and operators (the tests' simulated ones do
that through the hooks above) except the garbage collector's propagation and the quota
controller's ``status.used``; server-side apply, ``dryRun``, ``limit``/``continue``
pagination (lists are always whole), bookmarks, ``sendInitialEvents``, protobuf and CBOR,
table output, ``exec``/``attach``/``portforward``, ``resourceVersionMatch``, watch caches per
resource (one history is shared by every kind), delete preconditions, ``gracePeriodSeconds``
except the kubelet hand-off above, namespace ``Terminating`` waits, scale subresources,
version conversion of custom resources, discovery beyond ``/version``, TLS.
"""

from __future__ import annotations

import collections
import copy
import json
import queue
import random
import socket
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Obj = dict[str, Any]

__all__ = ["ApiStatusError", "KubeAPI", "ResourceType", "Subscription", "WatchEvent"]


# --------------------------------------------------------------------------------------------
# resources


@dataclass(frozen=True)
class ResourceType:
    """One kind the emulator serves: where it lives in the URL space and how it behaves."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    status_subresource: bool = True
    returns_deleted_object: bool = False
    field_labels: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """``pods`` for core kinds, ``plural.group`` for the others (as kubectl names them)."""
        return self.plural if not self.group else f"{self.plural}.{self.group}"

    @property
    def api_version(self) -> str:
        return self.version if not self.group else f"{self.group}/{self.version}"


_POD_FIELDS = ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
               "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
               "status.nominatedNodeName")

_CORE = [
    ResourceType("", "v1", "pods", "Pod", returns_deleted_object=True, field_labels=_POD_FIELDS),
    ResourceType("", "v1", "services", "Service", returns_deleted_object=True),
    ResourceType("", "v1", "secrets", "Secret", status_subresource=False, field_labels=("type",)),
    ResourceType("", "v1", "configmaps", "ConfigMap", status_subresource=False),
    ResourceType("", "v1", "resourcequotas", "ResourceQuota"),
    ResourceType("", "v1", "events", "Event", status_subresource=False),
    ResourceType("", "v1", "namespaces", "Namespace", namespaced=False,
                 returns_deleted_object=True, field_labels=("status.phase",)),
]

_CUSTOM = [
    ResourceType("sparkoperator.k8s.io", "v1beta2", "sparkapplications", "SparkApplication"),
    ResourceType("sparkoperator.k8s.io", "v1beta2", "scheduledsparkapplications",
                 "ScheduledSparkApplication"),
    ResourceType("kubeflow.org", "v1", "pytorchjobs", "PyTorchJob"),
]

# Strategic merge patch: lists merged by a key (patchMergeKey in the core types) ...
_MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "ports": "containerPort", "conditions": "type", "ownerReferences": "uid",
    "imagePullSecrets": "name", "hostAliases": "ip", "topologySpreadConstraints": "topologyKey",
}
# ... and lists of scalars merged as sets (patchStrategy: merge without a key).
_MERGE_SETS = {"finalizers"}

_TERMINAL = ("Succeeded", "Failed")


# --------------------------------------------------------------------------------------------
# errors


class ApiStatusError(Exception):
    """A refusal, carried as the ``Status`` object a real API server returns."""

    def __init__(self, code: int, reason: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    @property
    def body(self) -> Obj:
        body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                     "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body


def _qualified(rt: ResourceType) -> str:
    return rt.key


def _details(rt: ResourceType, name: str) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name}
    if rt.group:
        d["group"] = rt.group
    d["kind"] = rt.plural
    return d


def _not_found(rt: ResourceType, name: str) -> ApiStatusError:
    return ApiStatusError(404, "NotFound", f'{_qualified(rt)} "{name}" not found',
                          _details(rt, name))


def _already_exists(rt: ResourceType, name: str) -> ApiStatusError:
    return ApiStatusError(409, "AlreadyExists", f'{_qualified(rt)} "{name}" already exists',
                          _details(rt, name))


def _conflict(rt: ResourceType, name: str) -> ApiStatusError:
    return ApiStatusError(
        409, "Conflict",
        f'Operation cannot be fulfilled on {_qualified(rt)} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        _details(rt, name))


def _forbidden(rt: ResourceType, name: str, why: str) -> ApiStatusError:
    return ApiStatusError(403, "Forbidden", f'{_qualified(rt)} "{name}" is forbidden: {why}',
                          _details(rt, name))


def _bad_request(message: str) -> ApiStatusError:
    return ApiStatusError(400, "BadRequest", message)


def _no_such_resource() -> ApiStatusError:
    return ApiStatusError(404, "NotFound", "the server could not find the requested resource",
                          {})


# --------------------------------------------------------------------------------------------
# quantities (resource.Quantity): parsed exactly, printed in their canonical form


_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL: dict[str, Fraction] = {
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": Fraction(1),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
    "P": Fraction(10**15), "E": Fraction(10**18)}


@dataclass(frozen=True)
class Quantity:
    value: Fraction
    binary: bool = False

    @staticmethod
    def parse(text: Any) -> Quantity:
        s = str(text).strip()
        for suffix, mult in _BINARY.items():
            if s.endswith(suffix):
                return Quantity(Fraction(s[: -len(suffix)]) * mult, True)
        if "e" in s.lower() and not s.endswith("E"):
            return Quantity(Fraction(s.replace("E", "e")))
        for suffix in ("n", "u", "m", "k", "M", "G", "T", "P", "E"):
            if s.endswith(suffix):
                return Quantity(Fraction(s[: -len(suffix)]) * _DECIMAL[suffix])
        return Quantity(Fraction(s))

    def __add__(self, other: Quantity) -> Quantity:
        return Quantity(self.value + other.value, self.binary)

    def __str__(self) -> str:
        v = self.value
        if v == 0:
            return "0"
        if self.binary and v.denominator == 1:
            for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
                if v % _BINARY[suffix] == 0:
                    return f"{v // _BINARY[suffix]}{suffix}"
            if abs(v) < 1024:
                return str(v.numerator)
        for suffix in ("E", "P", "T", "G", "M", "k", "", "m", "u", "n"):
            scaled = v / _DECIMAL[suffix]
            if scaled.denominator == 1:
                return f"{scaled.numerator}{suffix}"
        return f"{(v * 10**9).__ceil__()}n"  # the real Quantity rounds up below nano too


def pod_usage(pod: Obj) -> dict[str, Quantity]:
    """What a pod charges to a quota, as the apiserver's pod evaluator computes it."""
    spec = pod.get("spec") or {}

    def per_container(c: Obj) -> tuple[dict[str, Quantity], dict[str, Quantity]]:
        res = c.get("resources") or {}
        limits = {k: Quantity.parse(v) for k, v in (res.get("limits") or {}).items()}
        requests = {k: Quantity.parse(v) for k, v in (res.get("requests") or {}).items()}
        for k, v in limits.items():  # a limit without a request is also the request
            requests.setdefault(k, v)
        return requests, limits

    def total(cs: list[Obj]) -> tuple[dict[str, Quantity], dict[str, Quantity]]:
        req: dict[str, Quantity] = {}
        lim: dict[str, Quantity] = {}
        for c in cs:
            r, li = per_container(c)
            for k, q in r.items():
                req[k] = req[k] + q if k in req else q
            for k, q in li.items():
                lim[k] = lim[k] + q if k in lim else q
        return req, lim

    req, lim = total(spec.get("containers") or [])
    for c in spec.get("initContainers") or []:  # an init container runs alone: max, not sum
        r, li = per_container(c)
        for src, dst in ((r, req), (li, lim)):
            for k, q in src.items():
                if k not in dst or q.value > dst[k].value:
                    dst[k] = q
    usage: dict[str, Quantity] = {"pods": Quantity(Fraction(1)),
                                   "count/pods": Quantity(Fraction(1))}
    for k, q in req.items():
        usage[f"requests.{k}"] = q
        if k in ("cpu", "memory", "ephemeral-storage"):
            usage[k] = q
    for k, q in lim.items():
        if k in ("cpu", "memory", "ephemeral-storage"):
            usage[f"limits.{k}"] = q
    return usage


def _pretty(resources: dict[str, Quantity]) -> str:
    return ",".join(f"{k}={resources[k]}" for k in sorted(resources))


# --------------------------------------------------------------------------------------------
# selectors


@dataclass(frozen=True)
class _Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return has and value == self.values[0]
        if self.op == "!=":
            return not has or value != self.values[0]
        if self.op == "in":
            return has and value in self.values
        if self.op == "notin":
            return not has or value not in self.values
        if self.op == "exists":
            return has
        return not has  # "!"


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def _parse_label_selector(text: str | None) -> list[_Requirement]:
    if not text:
        return []
    reqs: list[_Requirement] = []
    for part in _split_top(text):
        words = part.split()
        if len(words) >= 2 and words[1] in ("in", "notin"):
            rest = part.split(None, 2)[2].strip() if len(part.split(None, 2)) > 2 else ""
            if not (rest.startswith("(") and rest.endswith(")")):
                raise _bad_request(f"unable to parse requirement: found '{rest}', expected: '('")
            values = tuple(v.strip() for v in rest[1:-1].split(",") if v.strip())
            reqs.append(_Requirement(words[0], words[1], values))
        elif "!=" in part:
            k, v = part.split("!=", 1)
            reqs.append(_Requirement(k.strip(), "!=", (v.strip(),)))
        elif "==" in part or "=" in part:
            k, v = part.split("==", 1) if "==" in part else part.split("=", 1)
            reqs.append(_Requirement(k.strip(), "=", (v.strip(),)))
        elif part.startswith("!"):
            reqs.append(_Requirement(part[1:].strip(), "!"))
        elif len(words) == 1:
            reqs.append(_Requirement(part, "exists"))
        else:
            raise _bad_request(f"unable to parse requirement: {part!r}")
    return reqs


def _parse_field_selector(text: str | None, rt: ResourceType) -> list[tuple[str, str, str]]:
    if not text:
        return []
    allowed = ("metadata.name", "metadata.namespace", *rt.field_labels)
    out: list[tuple[str, str, str]] = []
    for part in _split_top(text):
        if "!=" in part:
            k, v = part.split("!=", 1)
            op = "!="
        elif "==" in part or "=" in part:
            k, v = part.split("==", 1) if "==" in part else part.split("=", 1)
            op = "="
        else:
            raise _bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        k = k.strip()
        if k not in allowed:
            raise _bad_request(f'field label not supported: {k}')
        out.append((k, op, v.strip()))
    return out


def _field_value(obj: Obj, path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


@dataclass
class _Selector:
    namespace: str | None = None
    labels: list[_Requirement] = field(default_factory=list)
    fields: list[tuple[str, str, str]] = field(default_factory=list)

    def matches(self, obj: Obj) -> bool:
        meta = obj.get("metadata") or {}
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        labels = meta.get("labels") or {}
        if not all(r.matches(labels) for r in self.labels):
            return False
        for path, op, value in self.fields:
            actual = _field_value(obj, path)
            if (actual == value) != (op == "="):
                return False
        return True


# --------------------------------------------------------------------------------------------
# patches


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = _merge_patch(result.get(k), v)
    return result


def _strategic_merge(target: Any, patch: Any, key: str | None = None) -> Any:
    """Strategic merge patch, for the simple cases (see the module docstring)."""
    if isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
        result = copy.deepcopy(target) if isinstance(target, dict) else {}
        for k, v in patch.items():
            if k.startswith("$"):
                continue
            if v is None:
                result.pop(k, None)
            else:
                result[k] = _strategic_merge(result.get(k), v, k)
        return result
    if isinstance(patch, list) and isinstance(target, list):
        if key in _MERGE_SETS:
            return list(target) + [v for v in patch if v not in target]
        merge_key = _MERGE_KEYS.get(key or "")
        if merge_key and all(isinstance(i, dict) for i in patch):
            result_list = copy.deepcopy(target)
            for item in patch:
                idx = next((i for i, old in enumerate(result_list)
                            if isinstance(old, dict) and old.get(merge_key) == item.get(merge_key)),
                           None)
                if item.get("$patch") == "delete":
                    if idx is not None:
                        result_list.pop(idx)
                elif idx is None:
                    result_list.append(copy.deepcopy(item))
                else:
                    result_list[idx] = _strategic_merge(result_list[idx], item)
            return result_list
    return copy.deepcopy(patch)


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def _json_patch(doc: Obj, ops: list[Obj]) -> Obj:
    """RFC 6902 JSON patch: add, remove, replace, test, copy, move."""
    doc = copy.deepcopy(doc)

    def parent(path: str) -> tuple[Any, str]:
        parts = _pointer(path)
        if not parts:
            raise _bad_request("the root of the object cannot be patched")
        cur: Any = doc
        for p in parts[:-1]:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        return cur, parts[-1]

    def get(path: str) -> Any:
        cur: Any = doc
        for p in _pointer(path):
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        return cur

    def add(path: str, value: Any) -> None:
        cont, last = parent(path)
        if isinstance(cont, list):
            cont.insert(len(cont) if last == "-" else int(last), value)
        else:
            cont[last] = value

    def remove(path: str) -> Any:
        cont, last = parent(path)
        return cont.pop(int(last)) if isinstance(cont, list) else cont.pop(last)

    try:
        for op in ops:
            kind, path = op.get("op"), op.get("path", "")
            if kind == "add":
                add(path, copy.deepcopy(op.get("value")))
            elif kind == "remove":
                remove(path)
            elif kind == "replace":
                remove(path)
                add(path, copy.deepcopy(op.get("value")))
            elif kind == "test":
                if get(path) != op.get("value"):
                    raise ApiStatusError(422, "Invalid",
                                         f"the server rejected our request due to an error in "
                                         f"our request: testing value {path} failed")
            elif kind == "move":
                add(path, remove(op["from"]))
            elif kind == "copy":
                add(path, copy.deepcopy(get(op["from"])))
            else:
                raise _bad_request(f"Unexpected kind: {kind}")
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise ApiStatusError(422, "Invalid",
                             f"the server rejected our request due to an error in our "
                             f"request: {exc}")
    return doc


# --------------------------------------------------------------------------------------------
# watch events and subscriptions


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


# --------------------------------------------------------------------------------------------
# the emulator


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


# --------------------------------------------------------------------------------------------
# the HTTP front


def _make_handler(api: KubeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        kube = api

    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    kube: KubeAPI

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    # ---- plumbing -----------------------------------------------------------------------

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise _bad_request(f"the body of the request could not be decoded as JSON: {exc}")

    def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(data)

    def _start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.close_connection = True

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # ---- routing ------------------------------------------------------------------------

    def _serve(self, method: str) -> None:
        try:
            try:
                self._route(method)
            except ApiStatusError as err:
                self._send(err.code, err.body)
            except Exception as exc:  # a bug here: answer as the real server does, 500
                self._send(500, ApiStatusError(500, "InternalError",
                                               f"Internal error occurred: {exc!r}").body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        parts = [p for p in url.path.split("/") if p]
        body = self._body() if method in ("POST", "PUT", "PATCH", "DELETE") else None
        if parts == ["version"]:
            self._send(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0-plait-kubeapi",
                             "platform": "linux/amd64"})
            return
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _no_such_resource()
        namespace: str | None = None
        if (len(rest) >= 3 and rest[0] == "namespaces"
                and not (len(rest) == 3 and rest[2] in ("status", "finalize"))):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise _no_such_resource()
        rt = self.kube._lookup(group, version, rest[0])
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if rt.namespaced is False and namespace is not None:
            raise _no_such_resource()
        if sub is not None and not ((sub == "status" and rt.status_subresource)
                                    or (sub == "log" and rt.key == "pods")):
            raise _no_such_resource()
        resource = rt.key + (f"/{sub}" if sub else "")
        kube = self.kube

        if name is None:
            sel = _Selector(namespace, _parse_label_selector(q.get("labelSelector")),
                            _parse_field_selector(q.get("fieldSelector"), rt))
            if method == "GET" and (q.get("watch") or "").lower() in ("true", "1", "t"):
                kube._count("watch", resource)
                self._watch(rt, sel, q.get("resourceVersion"), q.get("timeoutSeconds"))
            elif method == "GET":
                kube._count("list", resource)
                self._send(200, self._list(rt, sel))
            elif method == "POST":
                kube._count("create", resource)
                if rt.namespaced and namespace is None:
                    raise _no_such_resource()
                if not isinstance(body, dict):
                    raise _bad_request("the body of a create must be an object")
                self._send(201, kube._create(rt, namespace, body))
            elif method == "DELETE":
                kube._count("deletecollection", resource)
                propagation = q.get("propagationPolicy") or (body or {}).get("propagationPolicy")
                with kube._lock:
                    doomed = [o["metadata"]["name"] for o in kube._select(rt, sel)]
                    gone = []
                    for n in doomed:
                        if kube._objects[rt.key].get((namespace or "", n)) is not None:
                            gone.append(kube._delete(rt, namespace, n, propagation))
                    listing = self._list(rt, _Selector())
                listing["items"] = [o for o in gone if o.get("kind") != "Status"]
                self._send(200, listing)
            else:
                raise ApiStatusError(405, "MethodNotAllowed",
                                     "the server does not allow this method on the "
                                     "requested resource")
            return

        if method == "GET" and sub == "log":
            kube._count("get", resource)
            self._log(str(namespace), name, q)
        elif method == "GET":
            kube._count("get", resource)
            with kube._lock:
                self._send(200, copy.deepcopy(kube._must_get(rt, namespace, name)))
        elif method == "PUT":
            kube._count("update", resource)
            if not isinstance(body, dict):
                raise _bad_request("the body of an update must be an object")
            self._send(200, kube._update(rt, namespace, name, body, sub))
        elif method == "PATCH":
            kube._count("patch", resource)
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            with kube._lock:
                cur = kube._must_get(rt, namespace, name)
                if ctype == "application/merge-patch+json":
                    new = _merge_patch(cur, body)
                elif ctype == "application/json-patch+json":
                    if not isinstance(body, list):
                        raise _bad_request("a JSON patch must be a list of operations")
                    new = _json_patch(cur, body)
                elif ctype == "application/strategic-merge-patch+json" and not rt.group:
                    new = _strategic_merge(cur, body)
                else:
                    accepted = ["application/json-patch+json", "application/merge-patch+json",
                                "application/apply-patch+yaml"]
                    if not rt.group:
                        accepted.insert(2, "application/strategic-merge-patch+json")
                    raise ApiStatusError(415, "UnsupportedMediaType",
                                         "the body of the request was in an unknown format - "
                                         "accepted media types include: " + ", ".join(accepted))
                if isinstance(body, dict) and "resourceVersion" not in (body.get("metadata") or {}):
                    new.setdefault("metadata", {}).pop("resourceVersion", None)
                self._send(200, kube._update(rt, namespace, name, new, sub))
        elif method == "DELETE":
            kube._count("delete", resource)
            opts = body if isinstance(body, dict) else {}
            propagation = q.get("propagationPolicy") or opts.get("propagationPolicy")
            grace_text = q.get("gracePeriodSeconds") or opts.get("gracePeriodSeconds")
            grace = int(grace_text) if grace_text not in (None, "") else None
            result = kube._delete(rt, namespace, name, propagation, grace)
            self._send(200, result)
        else:
            raise ApiStatusError(405, "MethodNotAllowed",
                                 "the server does not allow this method on the requested resource")

    # ---- list and watch -----------------------------------------------------------------

    def _list(self, rt: ResourceType, sel: _Selector) -> Obj:
        kube = self.kube
        with kube._lock:
            items = [copy.deepcopy(o) for o in kube._select(rt, sel)]
            rv = str(kube._rv)
        if not rt.group:  # core lists carry their items without kind and apiVersion
            for item in items:
                item.pop("kind", None)
                item.pop("apiVersion", None)
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": rv}, "items": items}

    def _watch(self, rt: ResourceType, sel: _Selector, rv_text: str | None,
               timeout_text: str | None) -> None:
        kube = self.kube
        deadline = time.monotonic() + float(timeout_text) if timeout_text else None
        pending: list[Obj] = []
        with kube._lock:
            if kube._refusing_watches:
                raise ApiStatusError(503, "ServiceUnavailable", "the server is currently unable "
                                     "to handle the request (watches refused by the test)")
            if rv_text in (None, "", "0"):
                position = kube._rv
                pending = [{"type": "ADDED", "object": copy.deepcopy(o)}
                           for o in kube._select(rt, sel)]
            else:
                try:
                    position = int(str(rv_text))
                except ValueError:
                    raise _bad_request(f'invalid resource version "{rv_text}"')
            epoch = kube._watch_epoch  # registered in the same hold as the refusal check
            kube._open_watches[epoch] += 1
        try:
            self._start_stream("application/json")
            while True:
                gone = None
                with kube._lock:
                    if epoch != kube._watch_epoch:
                        self._cut()
                        return
                    if position < kube._compacted:
                        gone = {"type": "ERROR", "object": {
                            "kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure", "reason": "Expired", "code": 410,
                            "message": f"too old resource version: {position} "
                                       f"({kube._compacted + 1})"}}
                    else:
                        for ev in kube._history:
                            if ev.resource_version <= position or ev.resource != rt.key:
                                continue
                            out = _filtered(ev, sel)
                            if out is not None:
                                pending.append(out)
                        if kube._history:
                            position = max(position, kube._history[-1].resource_version)
                    if gone is None and not pending:
                        if kube._stopping:
                            break
                        left = None if deadline is None else deadline - time.monotonic()
                        if left is not None and left <= 0:
                            break
                        kube._changed.wait(0.5 if left is None else min(left, 0.5))
                        continue
                if gone is not None:
                    self._chunk(json.dumps(gone).encode() + b"\n")
                    break
                for event in pending:
                    self._chunk(json.dumps(event).encode() + b"\n")
                pending = []
            self._end_stream()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        finally:
            with kube._lock:
                kube._open_watches[epoch] -= 1
                if not kube._open_watches[epoch]:
                    del kube._open_watches[epoch]
                kube._changed.notify_all()

    def _cut(self) -> None:
        """End the connection mid-stream: no closing chunk, the socket shut both ways."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the client went first

    # ---- logs ---------------------------------------------------------------------------

    def _log(self, namespace: str, name: str, q: dict[str, str]) -> None:
        kube = self.kube
        rt = kube._by_key["pods"]
        with kube._lock:
            pod = kube._must_get(rt, namespace, name)
            spec = pod.get("spec") or {}
            names = [c.get("name") for c in spec.get("containers") or []]
            init = [c.get("name") for c in spec.get("initContainers") or []]
            container = q.get("container")
            if not container:
                if len(names) != 1:
                    raise _bad_request(f"a container name must be specified for pod {name}, "
                                       f"choose one of: [{' '.join(map(str, names))}]"
                                       + (f" or one of the init containers: "
                                          f"[{' '.join(map(str, init))}]" if init else ""))
                container = str(names[0])
            if container not in names + init:
                raise _bad_request(f"container {container} is not valid for pod {name}")
            status = pod.get("status") or {}
            for cs in (status.get("containerStatuses") or []) + (
                    status.get("initContainerStatuses") or []):
                waiting = (cs.get("state") or {}).get("waiting")
                if cs.get("name") == container and waiting is not None:
                    raise _bad_request(f'container "{container}" in pod "{name}" is waiting to '
                                       f'start: {waiting.get("reason") or "ContainerCreating"}')
            text = kube._logs.get((namespace, name, container), "")
            sent = len(text)
        tail = q.get("tailLines")
        if tail not in (None, ""):
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(str(tail)):]) if int(str(tail)) > 0 else ""
        if (q.get("follow") or "").lower() not in ("true", "1", "t"):
            self._send(200, text, "text/plain")
            return
        self._start_stream("text/plain")
        try:
            self._chunk(text.encode())
            while True:
                with kube._lock:
                    current = kube._logs.get((namespace, name, container), "")
                    more = current[sent:]
                    sent = len(current)
                    pod_now = kube._objects["pods"].get((namespace, name))
                    finished = pod_now is None or kube._stopping or _container_done(
                        pod_now, container)
                    if not more and not finished:
                        kube._changed.wait(0.5)
                        continue
                self._chunk(more.encode())
                if finished:
                    break
            self._end_stream()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass


def _container_done(pod: Obj, container: str) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") in _TERMINAL:
        return True
    for cs in (status.get("containerStatuses") or []) + (
            status.get("initContainerStatuses") or []):
        if cs.get("name") == container and (cs.get("state") or {}).get("terminated"):
            return True
    return False


def _filtered(ev: WatchEvent, sel: _Selector) -> Obj | None:
    """The event a watch with these selectors sees, or None."""
    now = sel.matches(ev.object)
    if ev.type == "MODIFIED":
        before = ev.old is not None and sel.matches(ev.old)
        if now and before:
            return {"type": "MODIFIED", "object": ev.object}
        if now:
            return {"type": "ADDED", "object": ev.object}
        if before:
            return {"type": "DELETED", "object": ev.object}
        return None
    return {"type": ev.type, "object": ev.object} if now else None
