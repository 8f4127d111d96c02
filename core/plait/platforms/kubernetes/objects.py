"""Create, find and delete plait's objects of any kind, through the real ``kubernetes`` client.

A thin shell: each method is one or two API requests, with the refusals a plugin must tell
apart turned into plait's errors (:mod:`.errors`). Objects are plain dicts, as written in a
manifest and as the API server returns them, for core kinds (pods) and custom resources
(SparkApplication, PyTorchJob) alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from plait.platforms.kubernetes.config import KubernetesConfig
from plait.platforms.kubernetes.errors import (
    KubernetesAPIError,
    KubernetesConfigError,
    KubernetesForbiddenError,
    KubernetesQuotaError,
    KubernetesUnreachableError,
)
from plait.platforms.kubernetes.names import LABEL_PREFIX, execution_selector

Obj = dict[str, Any]

REQUEST_TIMEOUT = 30.0
"""Seconds one API request (not a watch) may take before it counts as a connection failure."""


@dataclass(frozen=True)
class Kind:
    """A kind of object and where it lives in the API: ``Kind("", "v1", "pods", "Pod")``."""

    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> str:
        """``pods``, or ``sparkapplications.sparkoperator.k8s.io`` (as kubectl and RBAC name it)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def collection_path(self, namespace: str) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{root}/namespaces/{namespace}/{self.plural}"

    def object_path(self, namespace: str, name: str) -> str:
        return f"{self.collection_path(namespace)}/{name}"


POD = Kind("", "v1", "pods", "Pod")
SERVICE = Kind("", "v1", "services", "Service")
CONFIG_MAP = Kind("", "v1", "configmaps", "ConfigMap")
SECRET = Kind("", "v1", "secrets", "Secret")
CORE_KINDS = (POD,)
"""The core kinds plait creates (and sweeps): pods only. Services and ConfigMaps an operator
makes for a job are owned by the job and go with it; Secrets are the admin's, never plait's."""


def connect(config: KubernetesConfig) -> Any:
    """A ``kubernetes.client.ApiClient`` for the cluster the configuration names."""
    from kubernetes import client
    from kubernetes import config as kube_config

    try:
        if config.in_cluster:
            configuration = client.Configuration()
            kube_config.load_incluster_config(client_configuration=configuration)
            return client.ApiClient(configuration)
        return kube_config.new_client_from_config(config_file=config.kubeconfig,
                                                  context=config.context)
    except (kube_config.ConfigException, OSError) as exc:
        where = ("in-cluster credentials" if config.in_cluster else
                 f"kubeconfig {config.kubeconfig or '(the default: $KUBECONFIG or ~/.kube/config)'}"
                 + (f", context {config.context!r}" if config.context else ""))
        raise KubernetesConfigError(f"cannot load {where}: {exc}; set PLAIT_K8S_KUBECONFIG and "
                                    "PLAIT_K8S_CONTEXT, or PLAIT_K8S_IN_CLUSTER=true in a pod")


class KubernetesObjects:
    """Create-or-attach, get, list and delete objects of any kind, as plain dicts.

    ``kinds`` are the custom kinds the platform's plugins create (SparkApplication, ...): they
    let :meth:`kind_of` place a manifest and :meth:`delete_execution` sweep them too.
    """

    def __init__(self, api_client: Any, kinds: Iterable[Kind] = ()) -> None:
        self.api_client = api_client
        self.kinds: tuple[Kind, ...] = tuple(dict.fromkeys((*CORE_KINDS, *kinds)))

    @property
    def url(self) -> str:
        """The API server's URL."""
        return str(self.api_client.configuration.host)

    def kind_of(self, manifest: Obj) -> Kind:
        """The :class:`Kind` of a manifest, from its ``apiVersion`` and ``kind``."""
        api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
        for known in self.kinds:
            if known.api_version == api_version and known.kind == kind:
                return known
        raise KubernetesConfigError(
            f"plait does not know where {kind} ({api_version}) lives in the API; pass its Kind "
            "(group, version, plural) to KubernetesObjects(kinds=...)")

    # -- requests ---------------------------------------------------------------------------

    def create_or_attach(self, manifest: Obj, namespace: str | None = None) -> Obj:
        """Create the object; if one of that name exists (409), return it instead.

        This is what makes ``submit`` idempotent: the name comes from the attempt id, so a
        restarted engine asks for the same name and attaches to the object its predecessor
        created. An existing object that carries a different ``plait.dev/attempt`` label is
        someone else's, and an error. The object returned may be being deleted
        (``metadata.deletionTimestamp``) when an abort raced the create.
        """
        kind = self.kind_of(manifest)
        meta = manifest.get("metadata") or {}
        ns = namespace or meta.get("namespace")
        name = meta.get("name")
        if not ns or not name:
            raise KubernetesConfigError(f"a {kind.kind} manifest needs metadata.name and a "
                                        f"namespace to be created by name; got {meta!r}")
        for _ in range(3):  # create, or attach; again if the one found went in between
            try:
                return self._call("create", kind, ns, name, "POST", kind.collection_path(ns),
                                  body=manifest)
            except KubernetesAPIError as exc:
                if exc.code != 409 or exc.reason != "AlreadyExists":
                    raise
            existing = self.get(kind, ns, name)
            if existing is not None:
                self._check_ours(kind, ns, manifest, existing)
                return existing
        raise KubernetesAPIError("create", kind.kind, ns, name, 409, "AlreadyExists",
                                 "the object kept reappearing and vanishing; try again")

    def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        """The object, or None when there is none of that name."""
        try:
            return self._call("get", kind, namespace, name, "GET", kind.object_path(namespace, name))
        except KubernetesAPIError as exc:
            if exc.code == 404:
                return None
            raise

    def list_objects(self, kind: Kind, namespace: str, label_selector: str | None = None) -> tuple[list[Obj], str]:
        """The objects (matching the selector) and the list's resourceVersion, to watch from."""
        query = [("labelSelector", label_selector)] if label_selector else []
        body = self._call("list", kind, namespace, None, "GET", kind.collection_path(namespace),
                          query=query)
        items = list(body.get("items") or [])
        for item in items:  # a list's items carry no apiVersion and kind; the watch's do
            item.setdefault("apiVersion", kind.api_version)
            item.setdefault("kind", kind.kind)
        return items, str((body.get("metadata") or {}).get("resourceVersion") or "")

    def delete(self, kind: Kind, namespace: str, name: str) -> bool:
        """Delete the object and, first, what it owns (foreground); False if it was not there."""
        try:
            self._call("delete", kind, namespace, name, "DELETE",
                       kind.object_path(namespace, name), body=_FOREGROUND)
        except KubernetesAPIError as exc:
            if exc.code == 404:
                return False
            raise
        return True

    def delete_execution(self, namespace: str, execution_id: str) -> None:
        """Delete every object of the execution, of every kind in :attr:`kinds` (foreground).

        One ``deletecollection`` request per kind, with the execution's label selector; a custom
        kind the cluster does not serve (its CRD not installed) holds nothing, and is skipped.
        """
        query = [("labelSelector", execution_selector(execution_id)),
                 ("propagationPolicy", "Foreground")]
        for kind in self.kinds:
            try:
                self._call("deletecollection", kind, namespace, None, "DELETE",
                           kind.collection_path(namespace), query=query, body=_FOREGROUND)
            except KubernetesAPIError as exc:
                if exc.code != 404:
                    raise

    def logs(self, namespace: str, name: str, container: str | None = None,
             tail_lines: int | None = None, follow: bool = False) -> Any:
        """A pod's log: the text, or with ``follow`` the open response to read lines from."""
        from kubernetes.client.rest import ApiException
        from urllib3.exceptions import HTTPError

        query = [(k, v) for k, v in (("container", container),
                                     ("tailLines", None if tail_lines is None else str(tail_lines)),
                                     ("follow", "true" if follow else None)) if v is not None]
        path = f"{POD.object_path(namespace, name)}/log"
        try:
            response = self.api_client.call_api(
                path, "GET", {}, query, {"Accept": "*/*"}, response_type="str",
                auth_settings=["BearerToken"], _return_http_data_only=True, _preload_content=False,
                _request_timeout=None if follow else REQUEST_TIMEOUT)
        except ApiException as exc:
            raise _api_error(exc, "read the log of", POD, namespace, name) from exc
        except (HTTPError, OSError) as exc:
            raise KubernetesUnreachableError(self.url, "read the log of", "pods", exc) from exc
        if follow:
            return response
        return response.data.decode("utf-8", "replace")

    def watch_function(self, kind: Kind, namespace: str) -> Callable[..., Any]:
        """A list function for ``kubernetes.watch.Watch.stream`` that yields raw dicts."""

        def watch_or_list(**kwargs: Any) -> Any:
            # No ":return:" in this docstring: Watch leaves the objects as dicts.
            names = {"resource_version": "resourceVersion", "timeout_seconds": "timeoutSeconds",
                     "allow_watch_bookmarks": "allowWatchBookmarks", "watch": "watch",
                     "label_selector": "labelSelector"}
            query = [(names[k], _query_value(v)) for k, v in kwargs.items() if k in names]
            return self.api_client.call_api(
                kind.collection_path(namespace), "GET", {}, query,
                {"Accept": "application/json"}, response_type="object",
                auth_settings=["BearerToken"], _return_http_data_only=True,
                _preload_content=kwargs.get("_preload_content", True),
                _request_timeout=kwargs.get("_request_timeout"))

        return watch_or_list

    # -- plumbing ---------------------------------------------------------------------------

    def _check_ours(self, kind: Kind, namespace: str, manifest: Obj, existing: Obj) -> None:
        key = LABEL_PREFIX + "attempt"
        want = ((manifest.get("metadata") or {}).get("labels") or {}).get(key)
        have = ((existing.get("metadata") or {}).get("labels") or {}).get(key)
        if want is not None and have != want:
            name = manifest["metadata"]["name"]
            raise KubernetesAPIError(
                "create", kind.kind, namespace, name, 409, "AlreadyExists",
                f"an object of that name exists but belongs to attempt {have!r}, not {want!r}; "
                "delete it, or it was created by something other than plait")

    def _call(self, verb: str, kind: Kind, namespace: str, name: str | None, method: str,
              path: str, *, body: Obj | None = None,
              query: list[tuple[str, str]] | None = None) -> Obj:
        from kubernetes.client.rest import ApiException
        from urllib3.exceptions import HTTPError

        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            result = self.api_client.call_api(
                path, method, {}, query or [], headers, body=body, response_type="object",
                auth_settings=["BearerToken"], _return_http_data_only=True,
                _preload_content=True, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            raise _api_error(exc, verb, kind, namespace, name) from exc
        except (HTTPError, OSError) as exc:
            raise KubernetesUnreachableError(self.url, verb, kind.plural, exc) from exc
        return dict(result) if isinstance(result, dict) else {}


_FOREGROUND: Obj = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Foreground"}


def _query_value(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _api_error(exc: Any, verb: str, kind: Kind, namespace: str, name: str | None) -> Exception:
    """The plait error for an ApiException, from the Status body the server sent."""
    try:
        status = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        status = {}
    if not isinstance(status, dict):
        status = {}
    code = int(status.get("code") or exc.status or 0)
    reason = str(status.get("reason") or exc.reason or "")
    message = str(status.get("message") or exc.reason or "")
    if code == 403:
        if "exceeded quota" in message:
            return KubernetesQuotaError(kind.kind, namespace, name or "", message)
        return KubernetesForbiddenError(verb, kind.resource, namespace, message)
    return KubernetesAPIError(verb, kind.kind, namespace, name, code, reason, message)
