"""What the engine may do on a cluster, as the RBAC objects a cluster admin applies (pure).

The engine needs very little: in each tenant namespace (one per project and domain,
``{project}-{domain}`` by default) it creates, reads, watches and deletes the objects of its
attempts (Pods, SparkApplications, PyTorchJobs) and reads pod logs. :data:`ENGINE_PERMISSIONS`
lists exactly that, and :func:`tenant_manifests` turns it into the objects of one tenant
namespace; ``deploy/tenant.yaml`` is their rendering for ``pricing-production``, and a test keeps
the file and this module equal.

Least privilege, and why each absence is deliberate:

- **Namespaced only.** A Role and RoleBinding per tenant namespace, never a ClusterRole: an
  engine whose credentials leak reaches the tenant namespaces an admin bound it into, not the
  cluster, and a namespace an admin has not set up refuses the engine (403) instead of quietly
  filling up.
- **No Secrets, ConfigMaps or Services.** A task's secrets reach its pod as references to a
  Secret by name (``secretKeyRef``); the kubelet reads the Secret when it starts the pod, so
  the engine never needs to read one, and cannot leak what it cannot read.
- **No namespaces.** The engine does not create or list namespaces; an admin creates each
  tenant's namespace with this Role in it (``deploy/README.md``).
- **No ``update`` or ``patch``.** Objects are created once under a deterministic name and
  only ever deleted; the operators, not the engine, write their status.
- **Custom kinds granted even where their operator is absent.** With the grant, a request for
  a kind the cluster does not serve answers 404 (nothing there), which the engine's
  execution-wide cleanup skips; without it the answer would be 403, which stops the cleanup.

Task pods run as :data:`TASK_SERVICE_ACCOUNT`, which is bound to nothing and mounts no token:
user code in a task cannot talk to the API server as anyone.

This module imports nothing but the standard library, so an admin tool (or a test) can build
the objects without the ``kubernetes`` client.
"""

from __future__ import annotations

from typing import Any, NamedTuple

ENGINE_NAMESPACE = "plait-system"
"""The namespace the engine's Deployment and ServiceAccount live in (``deploy/engine.yaml``)."""

ENGINE_SERVICE_ACCOUNT = "plait-engine"
"""The engine's ServiceAccount, which each tenant's RoleBinding names."""

ENGINE_ROLE = "plait-engine"
"""The name of the Role and of the RoleBinding in each tenant namespace."""

TASK_SERVICE_ACCOUNT = "plait-task"
"""The ServiceAccount task pods run as: no permissions, no token mounted."""

PART_OF = {"app.kubernetes.io/part-of": "plait"}
"""The label every object in ``deploy/`` carries, so ``kubectl get -l`` finds them all."""

OBJECT_VERBS = ("create", "get", "list", "watch", "delete", "deletecollection")
"""What the engine does with the objects of its attempts: create under a deterministic name
(``get`` to attach after a restart), ``list`` and ``watch`` for the shared watch, ``delete`` one
attempt's object and ``deletecollection`` an execution's objects by label."""


class Permission(NamedTuple):
    """One RBAC rule: these verbs on this resource of this API group (``""``: the core group)."""

    api_group: str
    resource: str
    verbs: tuple[str, ...]

    def rule(self) -> dict[str, Any]:
        """The rule as it goes into a Role's ``rules``."""
        return {"apiGroups": [self.api_group], "resources": [self.resource], "verbs": list(self.verbs)}


ENGINE_PERMISSIONS: tuple[Permission, ...] = (
    Permission("", "pods", OBJECT_VERBS),
    Permission("", "pods/log", ("get",)),
    Permission("sparkoperator.k8s.io", "sparkapplications", OBJECT_VERBS),
    Permission("kubeflow.org", "pytorchjobs", OBJECT_VERBS),
)
"""Everything the engine may do in a tenant namespace, and nothing more."""


def tenant_role(
    namespace: str,
    service_account: str = ENGINE_SERVICE_ACCOUNT,
    service_account_namespace: str = ENGINE_NAMESPACE,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Role holding :data:`ENGINE_PERMISSIONS` in ``namespace``, and the RoleBinding that
    grants it to the engine's ServiceAccount (which lives in ``service_account_namespace``).

    The binding's ``roleRef`` is the Role in the same namespace, never a ClusterRole, so the
    grant cannot reach beyond ``namespace``.
    """
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": ENGINE_ROLE, "namespace": namespace, "labels": dict(PART_OF)},
        "rules": [permission.rule() for permission in ENGINE_PERMISSIONS],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": ENGINE_ROLE, "namespace": namespace, "labels": dict(PART_OF)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ENGINE_ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": service_account,
                      "namespace": service_account_namespace}],
    }
    return role, binding


def task_service_account(namespace: str) -> dict[str, Any]:
    """The ServiceAccount task pods run as in ``namespace``: bound to nothing, and with no
    token mounted into its pods, so a task's code holds no credential for the API server."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": TASK_SERVICE_ACCOUNT, "namespace": namespace, "labels": dict(PART_OF)},
        "automountServiceAccountToken": False,
    }


def tenant_manifests(
    namespace: str,
    service_account: str = ENGINE_SERVICE_ACCOUNT,
    service_account_namespace: str = ENGINE_NAMESPACE,
) -> list[dict[str, Any]]:
    """Every object a tenant namespace needs, in the order to apply them: the Namespace, the
    engine's Role and RoleBinding (:func:`tenant_role`) and the task ServiceAccount.

    Secrets are not among them: their values are the admin's to create (``deploy/README.md``).
    """
    namespace_object = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace, "labels": dict(PART_OF)},
    }
    role, binding = tenant_role(namespace, service_account, service_account_namespace)
    return [namespace_object, role, binding, task_service_account(namespace)]
