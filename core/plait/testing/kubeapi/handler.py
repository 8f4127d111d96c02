"""The HTTP front: routes the REST API's requests to the store, streams watches and logs."""

from __future__ import annotations

import copy
import json
import socket
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from plait.testing.kubeapi.errors import ApiStatusError, _bad_request, _no_such_resource
from plait.testing.kubeapi.patch import _json_patch, _merge_patch, _strategic_merge
from plait.testing.kubeapi.resources import _TERMINAL, Obj, ResourceType
from plait.testing.kubeapi.selector import _parse_field_selector, _parse_label_selector, _Selector
from plait.testing.kubeapi.watch import WatchEvent

if TYPE_CHECKING:
    from plait.testing.kubeapi.server import KubeAPI


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
