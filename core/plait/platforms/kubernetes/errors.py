"""The errors of the Kubernetes platform: each names the object, the namespace and what to do.

:class:`KubernetesRetryableError` and its subclasses mean "try again later" (a quota that is
full now, an API server that cannot be reached now); the others will not go away on their
own (a configuration mistake, a missing RBAC permission, an object the server refuses).
"""

from __future__ import annotations

from plait.model.errors import PlaitError


class KubernetesError(PlaitError):
    """Something about the Kubernetes platform or the cluster went wrong."""


class KubernetesConfigError(KubernetesError):
    """The platform's configuration is invalid; raised before anything starts."""


class KubernetesForbiddenError(KubernetesError):
    """The API server refused a request for lack of permission (RBAC)."""

    def __init__(self, verb: str, kind: str, namespace: str | None, message: str) -> None:
        self.verb = verb
        self.kind = kind
        self.namespace = namespace
        where = f"in namespace {namespace!r}" if namespace else "at cluster scope"
        super().__init__(
            f"the Kubernetes API server forbids plait to {verb} {kind} {where} "
            f"(403 Forbidden: {message}); grant the engine's identity the {verb!r} verb on "
            f"{kind} in that namespace (a Role and RoleBinding; see deploy/)"
        )


class KubernetesAPIError(KubernetesError):
    """The API server refused a request for another reason (an invalid object, a server error)."""

    def __init__(self, verb: str, kind: str, namespace: str | None, name: str | None,
                 code: int, reason: str, message: str) -> None:
        self.code = code
        self.reason = reason
        target = f"{kind} {name!r}" if name else kind
        where = f" in namespace {namespace!r}" if namespace else ""
        super().__init__(f"could not {verb} {target}{where}: {code} {reason}: {message}")


class KubernetesRetryableError(KubernetesError):
    """A refusal that may go away: try the same request again later."""


class KubernetesQuotaError(KubernetesRetryableError):
    """A namespace ResourceQuota refused the object; it fits once other work ends."""

    def __init__(self, kind: str, namespace: str, name: str, message: str) -> None:
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.quota_message = message
        super().__init__(f"{kind} {name!r} does not fit the ResourceQuota of namespace "
                         f"{namespace!r} yet: {message}")


class KubernetesUnreachableError(KubernetesRetryableError):
    """The API server could not be reached (refused, reset, timed out, TLS)."""

    def __init__(self, url: str, verb: str, kind: str, error: BaseException) -> None:
        self.url = url
        super().__init__(
            f"cannot reach the Kubernetes API server at {url} to {verb} {kind}: {error}; check "
            "the kubeconfig and context (PLAIT_K8S_KUBECONFIG, PLAIT_K8S_CONTEXT) and that the "
            "cluster is up"
        )
