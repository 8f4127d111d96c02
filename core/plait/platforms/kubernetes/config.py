"""The Kubernetes platform's configuration: where the cluster is and what every pod gets.

Build it in code (``KubernetesConfig(blob_url="s3://bucket/plait", ...)``) or from the
environment with :meth:`KubernetesConfig.from_env`. Every check that can fail does so here,
when the configuration is built, before anything is submitted: a blob store the pods cannot
reach, a namespace template with an unknown field.
"""

from __future__ import annotations

import json
import os
import re
import string
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from plait.platforms.kubernetes.errors import KubernetesConfigError

REMOTE_BLOB_SCHEMES = ("s3", "gs", "gcs")
"""Blob store URL schemes a pod can read from and write to."""

MAX_AUTO_PACK = 1000
"""The most map items an automatic choice packs into one pod (the pod's annotation lists them)."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_TEMPLATE_FIELDS = ("project", "domain")


class Toleration(BaseModel):
    """A pod toleration, as in the Pod spec (``tolerationSeconds`` only with ``NoExecute``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    key: str | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = Field(default=None, alias="tolerationSeconds")

    def manifest(self) -> dict[str, Any]:
        """The toleration as it goes into ``spec.tolerations``."""
        return self.model_dump(by_alias=True, exclude_none=True)


class ProjectOverrides(BaseModel):
    """What one project's pods get on top of the global settings (a project's value wins)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    annotations: dict[str, str] = Field(default_factory=dict)


class KubernetesConfig(BaseModel):
    """Where the cluster is, which namespace a tenant's work goes to, and what every pod gets.

    ``kubeconfig`` and ``context`` choose the cluster as kubectl would (``None``: ``$KUBECONFIG``
    or ``~/.kube/config`` and its current context); ``in_cluster`` uses the service account of
    the pod the engine runs in instead. ``namespace_template`` renders a tenant's namespace from
    ``{project}`` and ``{domain}``. ``blob_url`` is the blob store the pods read inputs from
    and write outputs to: it must be S3 or GCS, never a folder on the engine's machine.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    blob_url: str
    kubeconfig: str | None = None
    in_cluster: bool = False
    context: str | None = None
    namespace_template: str = "{project}-{domain}"
    image: str = "ghcr.io/plait-dev/plait:latest"
    service_account: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    annotations: dict[str, str] = Field(default_factory=dict)
    projects: dict[str, ProjectOverrides] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    """Environment every task container gets (a blob store endpoint, a region)."""
    env_from_secrets: tuple[str, ...] = ()
    """Secrets every task container gets all keys of as variables (blob store credentials)."""
    secrets_secret: str = "plait-secrets"
    """The Secret in each tenant namespace holding the tasks' secrets, one key per secret name."""
    python: str = "python"
    """The interpreter on the image's PATH that runs plait's entrypoint."""
    default_cpu: str = "1"
    default_memory: str = "1Gi"
    max_pods: int = Field(default=100, ge=1)
    """How many attempt pods one engine keeps in flight; more wait for one to end."""
    items_per_pod: int | None = Field(default=None, ge=1, le=10_000)
    """Map items packed into one pod; None chooses from the map's size: as few per pod as
    keeps ``max_pods`` pods busy (a 10,000-item map gets 100 per pod, a 50-item map 1)."""
    image_pull_grace: float = 60.0
    """Seconds an image may fail to pull (ErrImagePull, ImagePullBackOff) before the attempt fails."""
    unschedulable_grace: float = 300.0
    """Seconds a pod may stay unschedulable (no node fits its requests) before the attempt fails."""
    config_error_grace: float = 60.0
    """Seconds a container may wait for a missing Secret or ConfigMap before the attempt fails."""

    @field_validator("blob_url")
    @classmethod
    def _remote_blob_store(cls, url: str) -> str:
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in REMOTE_BLOB_SCHEMES:
            what = "a local folder" if scheme in ("", "file") else f"a {scheme}:// URL"
            raise ValueError(
                f"the blob store {url!r} (PLAIT_BLOB_URL) is {what}, which pods on the cluster "
                "cannot read or write; set PLAIT_BLOB_URL to a bucket both the engine and the "
                "pods can reach, such as s3://bucket/plait or gs://bucket/plait"
            )
        return url

    @field_validator("namespace_template")
    @classmethod
    def _known_fields(cls, template: str) -> str:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        except ValueError as exc:
            raise ValueError(f"the namespace template {template!r} is malformed: {exc}")
        unknown = [f for f in fields if f not in _TEMPLATE_FIELDS]
        if unknown:
            raise ValueError(f"the namespace template {template!r} uses {unknown}; it may use "
                             f"only {{project}} and {{domain}}")
        return template

    @field_validator("kubeconfig")
    @classmethod
    def _kubeconfig_or_in_cluster(cls, path: str | None) -> str | None:
        return os.path.expanduser(path) if path else None

    @model_validator(mode="after")
    def _one_way_in(self) -> KubernetesConfig:
        if self.in_cluster and self.kubeconfig:
            raise ValueError(
                f"both a kubeconfig ({self.kubeconfig!r}) and in-cluster credentials are asked "
                "for; choose one (unset PLAIT_K8S_KUBECONFIG or PLAIT_K8S_IN_CLUSTER)")
        return self

    def namespace(self, project: str, domain: str) -> str:
        """The namespace of (project, domain); raise KubernetesConfigError unless a DNS-1123 label."""
        name = self.namespace_template.format(project=project, domain=domain)
        if len(name) > 63 or not _DNS_LABEL.match(name):
            raise KubernetesConfigError(
                f"the namespace template {self.namespace_template!r} with project={project!r} "
                f"and domain={domain!r} gives {name!r}, which is not a valid namespace (a "
                "DNS-1123 label: at most 63 lowercase letters, digits and '-', starting and "
                "ending with a letter or digit); change the template (PLAIT_K8S_NAMESPACE) or "
                "the project's name"
            )
        return name

    def pack(self, map_size: int | None) -> int:
        """How many items of a map of ``map_size`` go into one pod (1 for a task, not a map)."""
        if not map_size:
            return 1
        if self.items_per_pod is not None:
            return self.items_per_pod
        return max(1, min(MAX_AUTO_PACK, -(-map_size // self.max_pods)))

    def node_selector_for(self, project: str) -> dict[str, str]:
        """The global node selector, with the project's entries over it."""
        extra = self.projects.get(project)
        return {**self.node_selector, **(extra.node_selector if extra else {})}

    def annotations_for(self, project: str) -> dict[str, str]:
        """The global pod annotations, with the project's entries over it."""
        extra = self.projects.get(project)
        return {**self.annotations, **(extra.annotations if extra else {})}

    def tolerations_for(self, project: str) -> list[dict[str, Any]]:
        """The global tolerations, then the project's, as they go into ``spec.tolerations``."""
        extra = self.projects.get(project)
        both = self.tolerations + (extra.tolerations if extra else ())
        out: list[dict[str, Any]] = []
        for toleration in both:
            item = toleration.manifest()
            if item not in out:
                out.append(item)
        return out

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KubernetesConfig:
        """The configuration from environment variables.

        - ``PLAIT_BLOB_URL``: the blob store (required here: ``s3://...`` or ``gs://...``).
        - ``PLAIT_K8S_KUBECONFIG``: the kubeconfig file (default: ``$KUBECONFIG`` or
          ``~/.kube/config``, as kubectl).
        - ``PLAIT_K8S_CONTEXT``: the kubeconfig context (default: its current context).
        - ``PLAIT_K8S_IN_CLUSTER``: ``1``/``true`` to use the pod's service account; by
          default true when ``KUBERNETES_SERVICE_HOST`` is set and no kubeconfig is named.
        - ``PLAIT_K8S_NAMESPACE``: the namespace template (default ``{project}-{domain}``).
        - ``PLAIT_K8S_IMAGE``: the default image of Python task pods.
        - ``PLAIT_K8S_SERVICE_ACCOUNT``: the pods' service account.
        - ``PLAIT_K8S_IMAGE_PULL_SECRETS``: comma-separated Secret names.
        - ``PLAIT_K8S_NODE_SELECTOR``, ``PLAIT_K8S_ANNOTATIONS``: ``key=value,key=value``.
        - ``PLAIT_K8S_TOLERATIONS``: a JSON list of tolerations as in the Pod spec.
        - ``PLAIT_K8S_ENV``: ``key=value,...`` every task container gets (an S3 endpoint).
        - ``PLAIT_K8S_ENV_FROM_SECRETS``: comma-separated Secrets whose keys every task
          container gets as variables (blob store credentials).
        - ``PLAIT_K8S_SECRETS``: the Secret holding the tasks' secrets (default ``plait-secrets``).
        - ``PLAIT_K8S_PYTHON``: the image's interpreter (default ``python``).
        - ``PLAIT_K8S_DEFAULT_CPU``, ``PLAIT_K8S_DEFAULT_MEMORY``: a task's requests when it
          names none (default ``1`` and ``1Gi``).
        - ``PLAIT_K8S_MAX_PODS``: attempt pods in flight (default 100).
        - ``PLAIT_K8S_ITEMS_PER_POD``: map items packed into one pod (default: chosen from
          the map's size so that ``PLAIT_K8S_MAX_PODS`` pods share it).
        - ``PLAIT_K8S_IMAGE_PULL_GRACE``, ``PLAIT_K8S_UNSCHEDULABLE_GRACE``,
          ``PLAIT_K8S_CONFIG_ERROR_GRACE``: seconds before such a pod fails its attempt.
        - ``PLAIT_K8S_PROJECTS``: a JSON object from project name to ``{"node_selector": {...},
          "tolerations": [...], "annotations": {...}}``.

        Raises KubernetesConfigError naming the variable at fault.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {"blob_url": env.get("PLAIT_BLOB_URL") or ""}
        if not values["blob_url"]:
            raise KubernetesConfigError(
                "PLAIT_BLOB_URL is not set, and the Kubernetes platform needs a blob store that "
                "pods can reach: set PLAIT_BLOB_URL to s3://bucket/prefix or gs://bucket/prefix"
            )
        simple = {"PLAIT_K8S_KUBECONFIG": "kubeconfig", "PLAIT_K8S_CONTEXT": "context",
                  "PLAIT_K8S_NAMESPACE": "namespace_template", "PLAIT_K8S_IMAGE": "image",
                  "PLAIT_K8S_SERVICE_ACCOUNT": "service_account", "PLAIT_K8S_SECRETS": "secrets_secret",
                  "PLAIT_K8S_PYTHON": "python", "PLAIT_K8S_DEFAULT_CPU": "default_cpu",
                  "PLAIT_K8S_DEFAULT_MEMORY": "default_memory", "PLAIT_K8S_MAX_PODS": "max_pods",
                  "PLAIT_K8S_ITEMS_PER_POD": "items_per_pod",
                  "PLAIT_K8S_IMAGE_PULL_GRACE": "image_pull_grace",
                  "PLAIT_K8S_UNSCHEDULABLE_GRACE": "unschedulable_grace",
                  "PLAIT_K8S_CONFIG_ERROR_GRACE": "config_error_grace"}
        for var, key in simple.items():
            if env.get(var):
                values[key] = env[var]
        in_cluster = env.get("PLAIT_K8S_IN_CLUSTER", "").strip().lower()
        if in_cluster:
            if in_cluster not in ("1", "true", "yes", "0", "false", "no"):
                raise KubernetesConfigError(
                    f"PLAIT_K8S_IN_CLUSTER={in_cluster!r} is not a boolean; set it to true or false")
            values["in_cluster"] = in_cluster in ("1", "true", "yes")
        else:
            values["in_cluster"] = bool(env.get("KUBERNETES_SERVICE_HOST")) and "kubeconfig" not in values
        for var, key in (("PLAIT_K8S_IMAGE_PULL_SECRETS", "image_pull_secrets"),
                         ("PLAIT_K8S_ENV_FROM_SECRETS", "env_from_secrets")):
            if env.get(var):
                values[key] = tuple(s.strip() for s in env[var].split(",") if s.strip())
        for var, key in (("PLAIT_K8S_NODE_SELECTOR", "node_selector"),
                         ("PLAIT_K8S_ANNOTATIONS", "annotations"), ("PLAIT_K8S_ENV", "env")):
            if env.get(var):
                values[key] = _pairs(var, env[var])
        for var, key in (("PLAIT_K8S_TOLERATIONS", "tolerations"), ("PLAIT_K8S_PROJECTS", "projects")):
            if env.get(var):
                try:
                    values[key] = json.loads(env[var])
                except ValueError as exc:
                    raise KubernetesConfigError(f"{var} is not valid JSON: {exc}")
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors())
            raise KubernetesConfigError(f"the Kubernetes platform's configuration is invalid: {problems}")


def _pairs(var: str, text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise KubernetesConfigError(f"{var} must be key=value pairs separated by commas; "
                                        f"{item!r} is not one")
        out[key.strip()] = value.strip()
    return out
