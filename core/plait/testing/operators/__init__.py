"""Simulated Spark and training operators for :class:`~plait.testing.kubeapi.KubeAPI`.

The emulator stores custom objects; nothing acts on them. These two controllers do what the
real operators do with a ``SparkApplication`` and a ``PyTorchJob``: create the pods the
:class:`~plait.testing.kubelet.Kubelet` then runs as real processes, and move the object
through the status sequence the real operator writes, so a plugin's mapping from an observed
object to a phase is tested against what a cluster shows::

    with KubeAPI(graceful_pods=True) as kube, Kubelet(kube) as node, \\
            SparkOperator(kube) as spark, TrainingOperator(kube) as training:
        CustomObjectsApi(kube.api_client()).create_namespaced_custom_object(...)

Each is driven by the emulator's in-process subscription (no HTTP), reconciling an object on
every change to it or to the pods it owns, as a controller-runtime reconciler does; the level
it reads is the emulator's current state, so a missed or repeated event changes nothing.
:attr:`created` keeps every object an operator created, as it sent it, for schema checks.
An error an operator did not expect (a bug here, not a refusal from the API server) is kept
and raised by :meth:`stop`, so a test cannot pass over it.
"""

from plait.testing.operators.base import Obj as Obj
from plait.testing.operators.spark import DRIVER_CONTAINER as DRIVER_CONTAINER
from plait.testing.operators.spark import SPARK_APPLICATIONS as SPARK_APPLICATIONS
from plait.testing.operators.spark import SparkOperator
from plait.testing.operators.training import PYTORCH_CONTAINER as PYTORCH_CONTAINER
from plait.testing.operators.training import PYTORCH_DEFAULT_PORT as PYTORCH_DEFAULT_PORT
from plait.testing.operators.training import PYTORCH_JOBS as PYTORCH_JOBS
from plait.testing.operators.training import PYTORCH_PORT_NAME as PYTORCH_PORT_NAME
from plait.testing.operators.training import TrainingOperator

__all__ = ["SparkOperator", "TrainingOperator"]
