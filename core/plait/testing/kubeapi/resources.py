"""The kinds the emulator serves: where each lives in the URL space and how it behaves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


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

_TERMINAL = ("Succeeded", "Failed")
