"""A small, stateful Kubernetes API server for tests, reached by the real ``kubernetes`` client.

No API server can be installed where plait's tests run, so this package serves the part of the
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

from plait.testing.kubeapi.errors import ApiStatusError
from plait.testing.kubeapi.quantity import Quantity as Quantity
from plait.testing.kubeapi.quantity import pod_usage as pod_usage
from plait.testing.kubeapi.resources import Obj as Obj
from plait.testing.kubeapi.resources import ResourceType
from plait.testing.kubeapi.server import KubeAPI
from plait.testing.kubeapi.watch import Subscription, WatchEvent

__all__ = ["ApiStatusError", "KubeAPI", "ResourceType", "Subscription", "WatchEvent"]
