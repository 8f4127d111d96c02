"""Attempt pods: the manifest of a Python attempt's pod, and what an observed pod means.

Pure (no I/O, no clock: the caller passes ``now``), so every mapping from a pod's status to
an attempt's outcome is tested on plain dicts; :mod:`.platform` does the requests.

How a pod's status maps to the attempt (see the README's table):

- ``Succeeded`` / ``Failed`` with a result in the blob store: the result (the task's own
  success or failure, retried as on the local platform).
- ``Failed`` without a result: ``OOMKilled`` is the user's error, naming the memory limit;
  ``Evicted`` (node pressure) and a lost node are system errors, retried; a pod past its
  ``activeDeadlineSeconds`` timed out; any other exit is a system error with the log's tail.
- ``Pending`` past a grace period: an image that cannot be pulled (``ErrImagePull``,
  ``ImagePullBackOff``) fails naming the image; a pod no node can fit (``Unschedulable``)
  fails naming its requests; a container waiting for a missing Secret or ConfigMap
  (``CreateContainerConfigError``) fails with the kubelet's message. Before the grace ends
  each of them is reported as waiting, with the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from plait.model.settings import SECRET_ENV_PREFIX, secret_env_name
from plait.model.wire import ContainerWork, Placement
from plait.platforms.kubernetes.config import KubernetesConfig
from plait.platforms.kubernetes.names import ObjectIdentity

Obj = dict[str, Any]

GPU = "nvidia.com/gpu"
GPU_TOLERATION: Obj = {"key": GPU, "operator": "Exists", "effect": "NoSchedule"}
"""The taint GPU node pools carry (GKE, EKS and AKS alike), tolerated by pods asking for GPUs."""

CONTAINER = "task"
ENTRYPOINT = "plait.runtime.remote"

IMAGE_PULL = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName")
CONFIG_ERROR = ("CreateContainerConfigError", "CreateContainerError")


def identity(placement: Placement) -> ObjectIdentity:
    return ObjectIdentity(execution_id=placement.execution_id, node_id=placement.node_id,
                          attempt_id=placement.attempt_id, project=placement.project,
                          domain=placement.domain, task_type=placement.task_type)


def _quantity(cpu: float) -> str:
    return str(int(cpu)) if float(cpu).is_integer() else f"{round(cpu * 1000)}m"


def resources(config: KubernetesConfig, placement: Placement) -> Obj:
    """Requests and limits: CPU requested (not limited: a limit only throttles), memory
    requested and limited alike (so the pod is not the first evicted), GPUs as
    ``nvidia.com/gpu`` in both, as the device plugin requires."""
    cpu = _quantity(placement.cpu) if placement.cpu else config.default_cpu
    memory = placement.memory or config.default_memory
    requests: dict[str, str] = {"cpu": cpu, "memory": memory}
    limits: dict[str, str] = {"memory": memory}
    if placement.gpu:
        requests[GPU] = limits[GPU] = str(placement.gpu)
    return {"requests": requests, "limits": limits}


def python_pod(config: KubernetesConfig, placement: Placement, namespace: str, job_uri: str,
               env: dict[str, str]) -> Obj:
    """The Pod that runs one Python attempt: plait's entrypoint on the task's image."""
    who = identity(placement)
    variables: list[Obj] = [{"name": k, "value": v} for k, v in {**config.env, **env}.items()]
    variables += [{"name": SECRET_ENV_PREFIX + secret_env_name(name),
                   "valueFrom": {"secretKeyRef": {"name": config.secrets_secret, "key": name}}}
                  for name in placement.secrets]
    container: Obj = {
        "name": CONTAINER,
        "image": placement.image or config.image,
        "command": [config.python, "-m", ENTRYPOINT],
        "args": [job_uri],
        "env": variables,
        "resources": resources(config, placement),
    }
    if config.env_from_secrets:
        container["envFrom"] = [{"secretRef": {"name": s}} for s in config.env_from_secrets]
    tolerations = config.tolerations_for(placement.project)
    for extra in (*placement.tolerations, *((GPU_TOLERATION,) if placement.gpu else ())):
        if extra not in tolerations:
            tolerations.append(dict(extra))
    spec: Obj = {"restartPolicy": "Never", "containers": [container],
                 "automountServiceAccountToken": False}
    if placement.timeout:
        spec["activeDeadlineSeconds"] = max(1, int(placement.timeout + 0.999))
    if config.service_account:
        spec["serviceAccountName"] = config.service_account
    if config.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in config.image_pull_secrets]
    selector = {**config.node_selector_for(placement.project), **placement.node_selector}
    if selector:
        spec["nodeSelector"] = selector
    if tolerations:
        spec["tolerations"] = tolerations
    metadata: Obj = {"name": who.name(), "namespace": namespace, "labels": who.labels()}
    annotations = {**config.annotations_for(placement.project), **placement.annotations, **who.annotations()}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


STEP_RESOURCES: Obj = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "256Mi"}}
"""What plait's own steps around a container task's command ask for: they only move files."""
VOLUME = "plait"


def container_pod(config: KubernetesConfig, placement: Placement, namespace: str, job_uri: str,
                  work: ContainerWork) -> Obj:
    """The Pod that runs a container task's command, unchanged, in its own image.

    Three steps in order, sharing an ``emptyDir`` at ``work.root``: plait's ``inputs`` step
    (plait's image) fetches the file inputs; the user's command runs as the ``task`` step; plait's
    ``outputs`` step stores what the command wrote and the result. The first two are init
    containers, which Kubernetes runs one after the other, each to success, before the pod's
    container: so outputs are collected only after the command ended well, on any cluster
    version, with no sidecar to stop and no process namespace to share.
    """
    pod = python_pod(config, placement, namespace, job_uri, {})
    plait_step = pod["spec"]["containers"][0]
    mount = [{"name": VOLUME, "mountPath": work.root}]

    def step(name: str, verb: str) -> Obj:
        out = {k: v for k, v in plait_step.items() if k not in ("name", "command", "args", "resources", "env")}
        return {**out, "name": name, "image": config.image, "env": [{"name": k, "value": v} for k, v in config.env.items()],
                "command": [config.python, "-m", "plait.runtime.transfer"], "args": [verb, job_uri],
                "resources": STEP_RESOURCES, "volumeMounts": mount}

    variables: list[Obj] = [{"name": k, "value": v} for k, v in work.env.items()]
    variables += [{"name": env, "valueFrom": {"secretKeyRef": {"name": config.secrets_secret, "key": secret}}}
                  for env, secret in work.secret_env.items()]
    command: Obj = {"name": CONTAINER, "image": work.image, "command": list(work.argv), "env": variables,
                    "resources": resources(config, placement), "volumeMounts": mount}
    pod["spec"]["initContainers"] = [step("inputs", "download"), command]
    pod["spec"]["containers"] = [step("outputs", "upload")]
    pod["spec"]["volumes"] = [{"name": VOLUME, "emptyDir": {}}]
    return pod


# ---- reading a pod ----------------------------------------------------------------------------


def phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def ended(pod: Obj) -> bool:
    return phase(pod) in ("Succeeded", "Failed")


def _statuses(pod: Obj) -> list[Obj]:
    status = pod.get("status") or {}
    return list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])


def _image_of(pod: Obj, container: str) -> str:
    spec = pod.get("spec") or {}
    for c in list(spec.get("initContainers") or []) + list(spec.get("containers") or []):
        if c.get("name") == container:
            return str(c.get("image"))
    return "?"


def _requests(pod: Obj) -> str:
    total: dict[str, str] = {}
    for c in (pod.get("spec") or {}).get("containers") or []:
        for key, value in ((c.get("resources") or {}).get("requests") or {}).items():
            total[key] = value if key not in total else f"{total[key]}+{value}"
    return ", ".join(f"{k}={v}" for k, v in sorted(total.items())) or "nothing"


Problem = Literal["image", "unschedulable", "config"]


@dataclass(frozen=True)
class Pending:
    """Why a pod has not started, in words for the user, and which grace period applies."""

    problem: Problem
    message: str


def pending_problem(pod: Obj) -> Pending | None:
    """What keeps a Pending pod from starting, or None when it is just starting."""
    if phase(pod) != "Pending":
        return None
    for cs in _statuses(pod):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason in IMAGE_PULL:
            image = cs.get("image") or _image_of(pod, str(cs.get("name")))
            return Pending("image", f"the image {image} cannot be pulled ({reason}: "
                                    f"{waiting.get('message') or 'no message'}); check its name and "
                                    "tag, and the image pull secrets (PLAIT_K8S_IMAGE_PULL_SECRETS)")
        if reason in CONFIG_ERROR:
            return Pending("config", f"container {cs.get('name')} cannot start ({reason}: "
                                     f"{waiting.get('message') or 'no message'}); create what it "
                                     "names in the namespace (task secrets live in the Secret "
                                     "PLAIT_K8S_SECRETS names, one key per secret)")
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False" \
                and cond.get("reason") == "Unschedulable":
            return Pending("unschedulable", f"no node can run the pod, which requests "
                                            f"{_requests(pod)} ({cond.get('message') or 'Unschedulable'}); "
                                            "ask for less with @task(resources=...), or add nodes")
    return None


def failure(pod: Obj | None, log_tail: str = "", command: str | None = None) -> dict[str, Any]:
    """The attempt's result when its pod ended (or vanished) without writing one.

    ``command`` names the container running the user's own command (a container task): its
    non-zero exit is the user's error, as on the local platform, not plait's.
    """
    if pod is None:
        return _failed("the attempt's pod vanished before it reported a result (its node was "
                       "lost, or something deleted it)", retryable=True, kind="system")
    status = pod.get("status") or {}
    reason = status.get("reason")
    if reason == "Evicted":
        return _failed(f"the pod was evicted from its node ({status.get('message') or 'node pressure'})",
                       retryable=True, kind="system")
    if reason == "DeadlineExceeded":
        deadline = (pod.get("spec") or {}).get("activeDeadlineSeconds")
        return _failed(f"the pod ran past its deadline of {deadline}s (the task's timeout) and was stopped",
                       retryable=True, kind="user")
    disrupted = [c for c in status.get("conditions") or []
                 if c.get("type") == "DisruptionTarget" and c.get("status") == "True"]
    if reason in ("NodeLost", "Terminated") or disrupted:
        why = (disrupted[0].get("message") if disrupted else None) or reason or status.get("message") or "disrupted"
        return _failed(f"the pod's node went away ({why})", retryable=True, kind="system")
    for cs in _statuses(pod):
        term = (cs.get("state") or {}).get("terminated") or {}
        if term.get("reason") == "OOMKilled":
            limit = _memory_limit(pod, str(cs.get("name")))
            return _failed(f"the task ran out of memory: container {cs.get('name')} was killed for "
                           f"going over its memory limit of {limit} (OOMKilled); give the task more "
                           "with @task(resources=Resources(memory=...))", retryable=True, kind="user")
    for cs in _statuses(pod):
        term = (cs.get("state") or {}).get("terminated") or {}
        if term and term.get("exitCode") not in (0, None):
            tail = f":\n{log_tail}" if log_tail else ""
            if cs.get("name") == command:
                return _failed(f"command exited with code {term.get('exitCode')}{tail}", retryable=True, kind="user")
            return _failed(f"container {cs.get('name')} exited with code {term.get('exitCode')} "
                           f"({term.get('reason') or 'Error'}) before reporting a result{tail}",
                           retryable=True, kind="system")
    return _failed(f"the pod ended ({phase(pod)}) without reporting a result", retryable=True, kind="system")


def _memory_limit(pod: Obj, container: str) -> str:
    spec = pod.get("spec") or {}
    for c in list(spec.get("initContainers") or []) + list(spec.get("containers") or []):
        if c.get("name") == container:
            return str(((c.get("resources") or {}).get("limits") or {}).get("memory") or "(none set)")
    return "(unknown)"


def _failed(message: str, *, retryable: bool, kind: str) -> dict[str, Any]:
    return {"status": "failed", "message": message, "retryable": retryable, "error_kind": kind,
            "platform_failure": True}
