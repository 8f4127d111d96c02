"""The core's Kubernetes helper: what every task type running on Kubernetes shares.

A plugin only builds its objects (a Pod, a SparkApplication, a PyTorchJob) and maps an
observed object to a phase; creating under the attempt's deterministic name, attaching after a
restart, following status through one shared watch per namespace and kind, deleting with
foreground propagation, and the labels a sweep finds them by are here:

- :mod:`.config`: :class:`KubernetesConfig`, the platform's settings (``PLAIT_K8S_*``).
- :mod:`.names`: deterministic object names and the labels every object carries (pure).
- :mod:`.objects`: create-or-attach, delete, delete an execution's objects (needs ``kubernetes``).
- :mod:`.watch`: the shared watch: a pure cache and the thread that feeds it (needs ``kubernetes``).

Only the pure modules are imported here, so this package imports without the ``kubernetes``
client; import ``objects`` and ``watch`` where the client is installed.
"""

from plait.platforms.kubernetes.config import KubernetesConfig, ProjectOverrides, Toleration
from plait.platforms.kubernetes.errors import (
    KubernetesAPIError,
    KubernetesConfigError,
    KubernetesError,
    KubernetesForbiddenError,
    KubernetesQuotaError,
    KubernetesRetryableError,
    KubernetesUnreachableError,
)
from plait.platforms.kubernetes.names import (
    LABEL_PREFIX,
    ObjectIdentity,
    execution_selector,
    label_value,
    object_name,
)

__all__ = [
    "LABEL_PREFIX",
    "KubernetesAPIError",
    "KubernetesConfig",
    "KubernetesConfigError",
    "KubernetesError",
    "KubernetesForbiddenError",
    "KubernetesQuotaError",
    "KubernetesRetryableError",
    "KubernetesUnreachableError",
    "ObjectIdentity",
    "ProjectOverrides",
    "Toleration",
    "execution_selector",
    "label_value",
    "object_name",
]
