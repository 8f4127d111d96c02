"""The ``kubernetes`` platform: every Python attempt is a Pod on a cluster.

``plait run --platform kubernetes`` runs the same workflow, unchanged, with each attempt in a
pod of the tenant's namespace (``{project}-{domain}``). What an attempt costs the API server is
fixed, whatever it runs for: one create, one log read and one delete, plus one shared watch
per namespace that tells every attempt when its pod changed (:mod:`.watch`). Nothing polls.

The path of one attempt:

1. **submit** (off the engine's event loop, in this platform's threads): the workflow's source
   tree goes to the blob store as a content-addressed archive, once per content
   (:mod:`plait.runtime.code`); the attempt's :class:`~plait.model.wire.RemoteJob` (its typed
   payload, no secret) goes next to where its result will be; the pod is created under the
   attempt's deterministic name (a second create after a restart attaches). A namespace
   ResourceQuota that refuses the pod keeps the attempt waiting (``waiting_for_resources``,
   naming the quota) and the create is retried with backoff.
2. **run**: the pod runs ``python -m plait.runtime.remote JOB_URI`` on the task's image
   (``@task(image=...)`` or ``PLAIT_K8S_IMAGE``), with the task's requests and limits, its
   environment and its secrets as ``secretKeyRef``s to the tenant's Secret: values never
   appear in a manifest, a job or a log.
3. **end**: when the watch sees the pod end, the result is read from the blob store and the
   pod's log through the API; the pod is deleted. A pod that ends without a result, or cannot
   start, is explained (:mod:`.pods`).

**Maps are packed**: a map's items go into pods of several items each (``items_per_pod``, or
chosen from the map's size so that ``max_pods`` pods share it), run one after the other in the
pod, each with its own result, log and failure, so retries stay per item exactly as on the
local platform. Items submitted together (within :data:`LINGER` seconds) share a pod; a
retried item goes into a pod with other retries. At most ``max_pods`` pods are in flight;
more wait here, not on the cluster.

After an engine restart, :meth:`KubernetesPlatform.attach_python` finds the attempt's pod in
the watch's cache (a packed pod lists its items in the ``plait.dev/items`` annotation), or the
result it left, and follows it: nothing runs twice.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import posixpath
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from plait.model.errors import PlaitError
from plait.model.status import Handle
from plait.model.wire import (
    CommandWork,
    ContainerJob,
    ContainerWork,
    ObjectKind,
    ObjectRequest,
    ObjectWork,
    Placement,
    RemoteJob,
)
from plait.platforms.kubernetes import pods
from plait.platforms.kubernetes.config import KubernetesConfig
from plait.platforms.kubernetes.errors import (
    KubernetesConfigError,
    KubernetesQuotaError,
    KubernetesRetryableError,
)
from plait.platforms.kubernetes.names import LABEL_PREFIX
from plait.plugins.platform import ObjectBuilder, Platform, ResultCallback, StateReader
from plait.runtime.code import archive, source_root
from plait.storage.blobs import BlobStore

log = logging.getLogger(__name__)

Obj = dict[str, Any]

QUOTA_BACKOFF = (1.0, 30.0)
"""Seconds between creates a ResourceQuota refused: first, and most."""

LINGER = 0.05
"""Seconds a map item waits for others to share its pod before the pod is created anyway."""

ITEMS_ANNOTATION = LABEL_PREFIX + "items"


@dataclass
class _Pod:
    """One pod this process follows: a single attempt, or a packed pod of map items."""

    namespace: str
    name: str
    job_uri: str
    result_uri: str
    blobs: BlobStore
    members: dict[str, ResultCallback]
    """Each attempt (job id) the pod runs, and whom to tell its result."""
    packed: bool = False
    seen: bool = False
    created: bool = False
    finishing: bool = False
    ended: bool = False
    command: str | None = None
    """The container running the user's own command (a container task), whose failure is theirs."""
    kind: Any = None
    """The object's :class:`~.objects.Kind` when it is not a pod (a SparkApplication)."""
    state: StateReader | None = None
    """How the task type reads its object (for a kind other than pods)."""
    holds_room: bool = False
    """Counted among the ``max_pods`` in flight (not so for a pod found again after a restart)."""
    cancelled: set[str] = field(default_factory=set)
    waiting: str | None = None
    since: dict[str, float] = field(default_factory=dict)
    unwatch: Callable[[], None] | None = None

    @property
    def abandoned(self) -> bool:
        """Every attempt in it was cancelled: the pod should go."""
        return bool(self.members) and self.cancelled >= set(self.members)


@dataclass
class _Batch:
    """Map items gathering to share a pod."""

    placement: Placement
    payloads: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, ResultCallback] = field(default_factory=dict)


class KubernetesPlatform(Platform):
    """Python attempts as pods; see the module's docstring."""

    name = "kubernetes"
    places_work = True

    def __init__(self, config: KubernetesConfig | None = None, api_client: Any = None) -> None:
        self._config = config
        self._api_client = api_client
        self._objects: Any = None
        self._watches: Any = None
        self._jobs: dict[str, _Pod] = {}
        """The pod of every attempt this process follows, by job id."""
        self._gathering: dict[tuple[str, str], _Batch] = {}
        self._queued: collections.deque[tuple[_Pod, Callable[[], None]]] = collections.deque()
        self._by_name: dict[str, _Pod] = {}
        self._in_flight = 0
        self._lock = threading.RLock()
        self._executor: ThreadPoolExecutor | None = None
        self._monitor: threading.Thread | None = None
        self._stopped = threading.Event()
        self._uploaded: set[str] = set()
        self._packed_index: dict[str, str] = {}
        """Job id -> packed pod name, from the annotations of pods seen (for re-attaching)."""

    # -- configuration and connections -----------------------------------------------------

    @property
    def config(self) -> KubernetesConfig:
        if self._config is None:
            self._config = KubernetesConfig.from_env()
        return self._config

    def prepare(self, blob_url: str) -> None:
        if self._config is None:
            self._config = KubernetesConfig.from_env({**os.environ, "PLAIT_BLOB_URL": blob_url})
        elif BlobStore(self._config.blob_url).url != BlobStore(blob_url).url:
            raise KubernetesConfigError(
                f"the engine's blob store is {blob_url}, but the Kubernetes platform was configured "
                f"for {self._config.blob_url}; pods must read and write the engine's store")
        self._connect()

    def _connect(self) -> Any:
        with self._lock:
            if self._objects is None:
                from plait.platforms.kubernetes.objects import KubernetesObjects, connect
                from plait.platforms.kubernetes.watch import Watches

                client = self._api_client if self._api_client is not None else connect(self.config)
                self._objects = KubernetesObjects(client)
                self._watches = Watches(self._objects)
            if self._executor is None:
                self._stopped.clear()
                self._executor = ThreadPoolExecutor(8, thread_name_prefix="plait-k8s")
                self._monitor = threading.Thread(target=self._watch_graces, daemon=True,
                                                 name="plait-k8s-graces")
                self._monitor.start()
            return self._objects

    def python_slots(self, items: int | None = None) -> int:
        return self.config.max_pods * self.config.pack(items)

    # -- Python attempts -------------------------------------------------------------------

    def submit_python(self, job_id: str, payload: dict[str, Any], done: ResultCallback,
                      placement: Placement | None = None) -> None:
        if placement is None:
            raise PlaitError("the kubernetes platform places each attempt from its Placement; "
                             "the python task type passes one (this caller did not)")
        self._connect()
        per_pod = self.config.pack(placement.map_size)
        if placement.item_index is None or per_pod == 1:
            pod = self._pod(placement, {job_id: done}, BlobStore(payload["blobs"]), packed=False)
            self._start_when_room(pod, lambda: self._create(pod, lambda: self._python_job(pod, [payload], placement)))
            return
        key = (placement.execution_id, placement.node_id)
        with self._lock:
            batch = self._gathering.get(key)
            if batch is None:
                batch = self._gathering[key] = _Batch(placement)
                first = True
            else:
                first = False
            batch.payloads[job_id] = payload
            batch.members[job_id] = done
            full = len(batch.payloads) >= per_pod
            if full:
                del self._gathering[key]
        if full:
            self._seal(batch)
        elif first:
            self._submit_work(self._linger, key, batch)

    def submit_container(self, job_id: str, work: ContainerWork, done: ResultCallback,
                         placement: Placement) -> None:
        self._connect()
        pod = self._pod(placement, {job_id: done}, BlobStore(self.config.blob_url), packed=False)
        self._start_when_room(pod, lambda: self._create(pod, lambda: self._container_job(pod, work, placement)))

    def submit_object(self, job_id: str, work: ObjectWork, build: ObjectBuilder, state: StateReader,
                      done: ResultCallback, placement: Placement) -> None:
        self._connect()
        kind = self._kind(work.kind)
        namespace = self.config.namespace(placement.project, placement.domain)
        name = pods.identity(placement).name(work.max_name_length)
        pod = self._follow(namespace, name, BlobStore(self.config.blob_url), {job_id: done}, packed=False)
        pod.kind, pod.state = kind, state
        self._start_when_room(pod, lambda: self._create(pod, lambda: self._object_job(pod, work, build, placement)))

    def attach_object(self, job_id: str, kind: ObjectKind, state: StateReader, done: ResultCallback,
                      placement: Placement) -> bool:
        if self._objects is None:
            return False
        found_kind = self._kind(kind)
        namespace = self.config.namespace(placement.project, placement.domain)
        watch = self._watches.watch(found_kind, namespace)
        blobs = BlobStore(self.config.blob_url)
        for length in (40, 48, 63):  # the name is cut to leave room for what the operator appends
            name = pods.identity(placement).name(length)
            if watch.get(name) is not None or blobs.exists(f"{blobs.uri('k8s', name)}/result.json"):
                break
        else:
            return False
        pod = self._follow(namespace, name, blobs, {job_id: done}, packed=False)
        pod.kind, pod.state = found_kind, state
        pod.seen = pod.created = True
        pod.unwatch = watch.on_change(name, lambda: self._examine(pod))
        self._examine(pod)
        return True

    def _kind(self, kind: ObjectKind) -> Any:
        from plait.platforms.kubernetes.objects import Kind

        found = Kind(kind.group, kind.version, kind.plural, kind.kind)
        if found not in self._objects.kinds:
            self._objects.kinds = (*self._objects.kinds, found)
        return found

    def _linger(self, key: tuple[str, str], batch: _Batch) -> None:
        self._stopped.wait(LINGER)
        with self._lock:
            if self._gathering.get(key) is not batch:
                return  # it filled up and was sealed meanwhile
            del self._gathering[key]
        self._seal(batch)

    def _seal(self, batch: _Batch) -> None:
        """A batch is complete: make it a pod (when there is room for one)."""
        with self._lock:
            payloads = list(batch.payloads.values())
            members = dict(batch.members)
        if not payloads:
            return
        first = batch.placement
        digest = hashlib.sha256("\n".join(members).encode()).hexdigest()[:8]
        index = payloads[0].get("item_index")
        placement = first.model_copy(update={"attempt_id": f"{first.execution_id}/{first.node_id}"
                                                           f"/pack-{index}-{digest}"})
        pod = self._pod(placement, members, BlobStore(payloads[0]["blobs"]), packed=True)
        self._start_when_room(pod, lambda: self._create(pod, lambda: self._python_job(pod, payloads, placement)))

    def attach_python(self, job_id: str, done: ResultCallback, placement: Placement) -> bool:
        if self._objects is None:
            return False
        from plait.platforms.kubernetes.objects import POD

        namespace = self.config.namespace(placement.project, placement.domain)
        watch = self._watches.watch(POD, namespace)
        blobs = BlobStore(self.config.blob_url)
        name = pods.identity(placement).name()
        found = watch.get(name)
        packed = False
        if found is None and placement.item_index is not None:
            name = self._find_packed(watch, job_id) or name
            found = watch.get(name)
            packed = found is not None
        with self._lock:
            known = self._by_name.get(name)
            if known is not None and not known.finishing:  # the pod of other items, followed already
                known.members[job_id] = done
                self._jobs[job_id] = known
                return True
        if found is None and not blobs.exists(f"{blobs.uri('k8s', name)}/result.json"):
            return False
        pod = self._follow(namespace, name, blobs, {job_id: done}, packed=packed)
        pod.seen = pod.created = True
        pod.unwatch = watch.on_change(name, lambda: self._examine(pod))
        self._examine(pod)
        return True

    def _find_packed(self, watch: Any, job_id: str) -> str | None:
        if job_id not in self._packed_index:
            for name in watch.cache.names():
                obj = watch.get(name)
                for member in _members(obj or {}):
                    self._packed_index[member] = name
        return self._packed_index.get(job_id)

    def cancel_python(self, job_id: str) -> None:
        with self._lock:
            for batch in list(self._gathering.values()):  # not in a pod yet: just drop it
                batch.members.pop(job_id, None)
                batch.payloads.pop(job_id, None)
            pod = self._jobs.pop(job_id, None)
            if pod is None:
                return
            pod.cancelled.add(job_id)
            if not pod.abandoned:
                return  # other items still run in the pod
        if pod.unwatch is not None:
            pod.unwatch()
        self._submit_work(self._delete, pod)

    def waiting(self, job_id: str) -> str | None:
        pod = self._jobs.get(job_id)
        if pod is None:
            return None
        if pod.waiting:
            return pod.waiting
        if pod.since and self._watches is not None and pod.kind is None:
            from plait.platforms.kubernetes.objects import POD

            found = self._watches.watch(POD, pod.namespace).get(pod.name)
            problem = pods.pending_problem(found) if found is not None else None
            return problem.message if problem is not None else None
        return None

    def execution_ended(self, execution_id: str, project: str, domain: str, phase: str) -> None:
        """Delete every object of a failed or aborted execution, of every kind, by its label:
        one request per kind, catching what an attempt's own cleanup could not."""
        if self._objects is None:
            return
        self._objects.delete_execution(self.config.namespace(project, domain), execution_id)

    def close(self) -> None:
        """Finish the deletes already asked for, then stop the watches and threads."""
        self._stopped.set()  # a create waiting for quota gives up; queued deletes still run
        with self._lock:
            executor, self._executor = self._executor, None
            self._queued.clear()
        if executor is not None:
            executor.shutdown(wait=True)
        with self._lock:
            watches = self._watches
            self._objects = self._watches = None
            self._jobs.clear()
            self._by_name.clear()
            self._gathering.clear()
            self._in_flight = 0
        if watches is not None:
            watches.close()

    # -- command lines (container and process task types): not yet on this platform ---------

    def start(self, work: CommandWork) -> Handle:
        raise PlaitError(
            "the kubernetes platform runs Python and container tasks as pods; the command-line "
            "task types (spark, pytorch, papermill) do not run on it yet: run them with --platform local")

    # -- bookkeeping -------------------------------------------------------------------------

    def _pod(self, placement: Placement, members: dict[str, ResultCallback], blobs: BlobStore,
             packed: bool) -> _Pod:
        namespace = self.config.namespace(placement.project, placement.domain)
        return self._follow(namespace, pods.identity(placement).name(), blobs, members, packed)

    def _follow(self, namespace: str, name: str, blobs: BlobStore, members: dict[str, ResultCallback],
                packed: bool) -> _Pod:
        folder = blobs.uri("k8s", name)
        pod = _Pod(namespace, name, f"{folder}/job.json", f"{folder}/result.json", blobs, members, packed)
        with self._lock:
            for job_id in members:
                self._jobs[job_id] = pod
            self._by_name[name] = pod
        return pod

    def _forget(self, pod: _Pod) -> None:
        with self._lock:
            for job_id in pod.members:
                if self._jobs.get(job_id) is pod:
                    del self._jobs[job_id]
            if self._by_name.get(pod.name) is pod:
                del self._by_name[pod.name]
        if pod.unwatch is not None:
            pod.unwatch()

    def _start_when_room(self, pod: _Pod, create: Callable[[], None]) -> None:
        """Create now if fewer than ``max_pods`` pods are in flight, else when one ends."""
        with self._lock:
            if self._in_flight >= self.config.max_pods:
                pod.waiting = (f"waiting for one of the {self.config.max_pods} pods in flight to end "
                               "(PLAIT_K8S_MAX_PODS)")
                self._queued.append((pod, create))
                return
            self._in_flight += 1
            pod.holds_room = True
        self._submit_work(lambda _: create(), None)

    def _free_room(self, pod: _Pod) -> None:
        with self._lock:
            if not pod.holds_room:
                return
            pod.holds_room = False
            while self._queued:
                waiting, create = self._queued.popleft()
                if waiting.abandoned:
                    self._forget(waiting)
                    continue
                waiting.holds_room = True  # the room just freed passes to it
                break
            else:
                self._in_flight = max(0, self._in_flight - 1)
                return
        self._submit_work(lambda _: create(), None)

    def _submit_work(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn`` in this platform's threads; dropped once :meth:`close` has begun (a watch
        event arriving then must not start the platform again)."""
        executor = self._executor
        if executor is None or self._stopped.is_set() and fn != self._delete:
            return
        try:
            executor.submit(self._guarded, fn, *args)
        except RuntimeError:  # shut down between the check and the submit
            pass

    def _guarded(self, fn: Callable[..., None], pod: Any, *args: Any) -> None:
        try:
            fn(pod, *args)
        except Exception as exc:
            log.exception("kubernetes platform: %s failed", getattr(fn, "__name__", fn))
            if isinstance(pod, _Pod) and fn != self._delete:
                retryable = isinstance(exc, KubernetesRetryableError) or not isinstance(exc, PlaitError)
                self._end(pod, {"status": "failed", "platform_failure": True, "message": f"{type(exc).__name__}: {exc}",
                                "retryable": retryable, "error_kind": "system" if retryable else "user"})

    # -- the work, in this platform's threads ----------------------------------------------

    def _create(self, pod: _Pod, prepare: Callable[[], Obj]) -> None:
        try:
            self._create_pod(pod, prepare)
        except Exception as exc:
            retryable = isinstance(exc, KubernetesRetryableError) or not isinstance(exc, PlaitError)
            log.warning("kubernetes platform: creating %s failed: %s", pod.name, exc)
            self._end(pod, {"status": "failed", "platform_failure": True,
                            "message": f"could not create {pod.name}: {exc}",
                            "retryable": retryable, "error_kind": "system" if retryable else "user"})

    def _python_job(self, pod: _Pod, payloads: list[dict[str, Any]], placement: Placement) -> Obj:
        """Store the attempt's (or packed items') job and the code archive; return the pod."""
        code_uri, code_root = self._ship_code(pod.blobs, payloads[0]["ref"])
        clean = [{k: v for k, v in p.items() if k != "secrets"} for p in payloads]
        remote = RemoteJob(payload={} if pod.packed else clean[0], items=clean if pod.packed else [],
                           result_uri=pod.result_uri, code_uri=code_uri, code_root=code_root,
                           secrets=placement.secrets)
        pod.blobs.write_bytes(pod.job_uri, remote.model_dump_json().encode())
        manifest = pods.python_pod(self.config, placement, pod.namespace, pod.job_uri,
                                   dict(payloads[0].get("env") or {}))
        if pod.packed:
            manifest["metadata"].setdefault("annotations", {})[ITEMS_ANNOTATION] = ",".join(pod.members)
        return manifest

    def _container_job(self, pod: _Pod, work: ContainerWork, placement: Placement) -> Obj:
        """Store the container attempt's job (for the pod's plait steps); return the pod."""
        job = ContainerJob(blobs=pod.blobs.url, root=work.root, inputs=work.inputs, outputs=work.outputs,
                           result_uri=pod.result_uri)
        pod.blobs.write_bytes(pod.job_uri, job.model_dump_json().encode())
        pod.command = pods.CONTAINER
        return pods.container_pod(self.config, placement, pod.namespace, pod.job_uri, work)

    def _object_job(self, pod: _Pod, work: ObjectWork, build: ObjectBuilder, placement: Placement) -> Obj:
        """Store the attempt's job (and the code archive); return the task type's object."""
        job = dict(work.job)
        payload = job.get("payload")
        if isinstance(payload, dict):
            job["code_uri"], job["code_root"] = self._ship_code(pod.blobs, payload["ref"])
        job["workdir"] = posixpath.dirname(pod.job_uri)
        pod.blobs.write_bytes(pod.job_uri, json.dumps(job).encode())
        template = pods.python_pod(self.config, placement, pod.namespace, pod.job_uri, dict(work.env))
        container = template["spec"]["containers"][0]
        spec = template["spec"]
        request = ObjectRequest(
            name=pod.name, namespace=pod.namespace, labels=template["metadata"]["labels"],
            image=container["image"], python=self.config.python, job_uri=pod.job_uri,
            env=container["env"], env_from=container.get("envFrom") or [], resources=container["resources"],
            service_account=spec.get("serviceAccountName"), node_selector=spec.get("nodeSelector") or {},
            tolerations=spec.get("tolerations") or [],
            image_pull_secrets=[s["name"] for s in spec.get("imagePullSecrets") or []])
        manifest = build(request)
        metadata = {**template["metadata"], "name": pod.name}
        metadata.update({k: v for k, v in (manifest.get("metadata") or {}).items() if k not in ("name", "namespace")})
        metadata["labels"] = {**(manifest.get("metadata") or {}).get("labels", {}), **template["metadata"]["labels"]}
        return {**manifest, "metadata": metadata}

    def _ship_code(self, blobs: BlobStore, ref: dict[str, Any]) -> tuple[str | None, str | None]:
        """The code archive's URI (stored once per content) and the folder it was packed from."""
        root = source_root(ref["module"], ref.get("file"))
        if root is None:
            return None, None
        packed = archive(root)
        code_uri = blobs.uri("code", f"{packed.digest}.tar.gz")
        if code_uri not in self._uploaded:
            if not blobs.exists(code_uri):
                blobs.write_bytes(code_uri, packed.data)
            self._uploaded.add(code_uri)
        return code_uri, str(root)

    def _create_pod(self, pod: _Pod, prepare: Callable[[], Obj]) -> None:
        from plait.platforms.kubernetes.objects import POD

        pod.waiting = None
        manifest = prepare()
        watch = self._watches.watch(pod.kind or POD, pod.namespace)
        pod.unwatch = watch.on_change(pod.name, lambda: self._examine(pod))
        delay = QUOTA_BACKOFF[0]
        while True:
            if pod.abandoned or self._stopped.is_set():
                self._end(pod)
                return
            try:
                created = self._objects.create_or_attach(manifest, pod.namespace)
                break
            except KubernetesQuotaError as exc:
                pod.waiting = (f"waiting for room in the ResourceQuota of namespace {pod.namespace}: "
                               f"{exc.quota_message}")
                self._stopped.wait(delay)
                delay = min(QUOTA_BACKOFF[1], delay * 2)
        pod.waiting = None
        pod.created = True
        watch.observe(created)
        self._examine(pod)

    def _examine(self, pod: _Pod) -> None:
        """Look at the pod in the watch's cache; act when it ended or cannot start. Cheap."""
        from plait.platforms.kubernetes.objects import POD

        if pod.finishing or pod.abandoned or self._watches is None or not pod.created:
            return
        found = self._watches.watch(pod.kind or POD, pod.namespace).get(pod.name)
        if found is None:
            if pod.seen:  # it was there, and went without us deleting it
                pod.finishing = True
                self._submit_work(self._finish, pod, None)
            return
        pod.seen = True
        if pod.state is not None:  # another kind: the task type reads it
            if pod.state(found).phase != "running":
                pod.finishing = True
                self._submit_work(self._finish, pod, found)
            return
        if pods.ended(found):
            pod.finishing = True
            self._submit_work(self._finish, pod, found)
            return
        problem = pods.pending_problem(found)
        if problem is None:
            pod.since.clear()
            return
        now = time.monotonic()
        for other in [k for k in pod.since if k != problem.problem]:
            del pod.since[other]
        since = pod.since.setdefault(problem.problem, now)
        grace = {"image": self.config.image_pull_grace, "unschedulable": self.config.unschedulable_grace,
                 "config": self.config.config_error_grace}[problem.problem]
        if now - since >= grace:
            pod.finishing = True
            self._submit_work(self._give_up, pod, problem.message, grace)

    def _watch_graces(self) -> None:
        """Re-examine pods stuck before starting, so a grace period ends without an event."""
        while not self._stopped.wait(1.0):
            with self._lock:
                stuck = {id(p): p for p in self._jobs.values() if p.since and not p.finishing}
            for pod in stuck.values():
                try:
                    self._examine(pod)
                except Exception:
                    log.exception("kubernetes platform: examining %s failed", pod.name)

    def _give_up(self, pod: _Pod, message: str, grace: float) -> None:
        self._delete(pod)
        self._end(pod, {"status": "failed", "platform_failure": True, "message": f"{message} (for {grace:g}s)",
                        "retryable": False, "error_kind": "user"})

    def _finish(self, pod: _Pod, found: Obj | None) -> None:
        if pod.state is not None:
            self._finish_object(pod, found)
            return
        data = pod.blobs.read_if_exists(pod.result_uri)
        report: dict[str, Any] | None = json.loads(data) if data is not None else None
        text = ""
        if found is not None:
            try:
                text = self._objects.logs(pod.namespace, pod.name, pods.CONTAINER)
            except PlaitError as exc:
                text = f"(the pod's log could not be read: {exc})"
        failure = None
        if report is None:
            failure = pods.failure(found, "\n".join(text.strip().splitlines()[-30:]), pod.command)
        if found is not None:
            self._delete(pod)
        if not pod.packed:
            result = failure or dict(report or {})
            if text:
                result["stdout"] = text
            self._end(pod, result)
            return
        items = (report or {}).get("items") or {}
        results = {}
        for job_id in pod.members:
            item = items.get(job_id)
            if item is None:
                item = dict(failure or pods.failure(found, ""))
                item["message"] = f"{item['message']} (item {job_id} ran in the packed pod {pod.name})"
            results[job_id] = item
        self._end(pod, results=results)

    def _finish_object(self, pod: _Pod, found: Obj | None) -> None:
        """The object ended: its entrypoint's result (or a rank's error), its log; then delete it."""
        assert pod.state is not None
        state = pod.state(found) if found is not None else None
        folder = posixpath.dirname(pod.result_uri)
        data = pod.blobs.read_if_exists(pod.result_uri)
        result: dict[str, Any] | None = json.loads(data) if data is not None else None
        if result is None:  # a rank that failed first says why (plait_pytorch.rank writes error-<rank>.json)
            errors = [uri for uri in pod.blobs.list(f"{folder}/error-") if uri.endswith(".json")]
            if errors:
                first = json.loads(pod.blobs.read_bytes(errors[0]))
                rank = first.pop("rank", None)
                result = {**first, "message": f"rank {rank} failed: {first.get('message', '')}"}
        text = ""
        if state is not None and state.log_pod:
            try:
                text = self._objects.logs(pod.namespace, state.log_pod, state.log_container)
            except PlaitError as exc:
                text = f"(the log of {state.log_pod} could not be read: {exc})"
        if result is None and pod.kind is not None and pod.kind.plural == "pods" and found is not None:
            result = pods.failure(found, "\n".join(text.strip().splitlines()[-30:]))  # OOMKilled, evicted...
        if result is None:
            what = pod.kind.kind if pod.kind is not None else "object"
            if state is None:
                message = f"the attempt's {what} {pod.name} vanished before it reported a result"
            else:
                message = f"the {what} {pod.name} {state.phase} without reporting a result: {state.message}"
            tail = "\n".join(text.strip().splitlines()[-30:])
            result = {"status": "failed", "platform_failure": True, "message": message + (f"\n{tail}" if tail else ""),
                      "retryable": True, "error_kind": "system"}
        if text:
            result["stdout"] = text
        if found is not None:
            self._delete(pod)
        self._end(pod, result)

    def _delete(self, pod: _Pod) -> None:
        from plait.platforms.kubernetes.objects import POD

        if self._objects is not None:
            self._objects.delete(pod.kind or POD, pod.namespace, pod.name)

    def _end(self, pod: _Pod, result: dict[str, Any] | None = None,
             results: dict[str, dict[str, Any]] | None = None) -> None:
        """Tell every attempt in the pod its result, once; free the pod's room."""
        with self._lock:
            if pod.ended:
                return
            pod.ended = True
        self._forget(pod)
        self._free_room(pod)
        for job_id, done in pod.members.items():
            if job_id in pod.cancelled:
                continue
            item = results.get(job_id) if results is not None else result
            if item is not None:
                done(dict(item))


def _members(obj: Obj) -> list[str]:
    text = ((obj.get("metadata") or {}).get("annotations") or {}).get(ITEMS_ANNOTATION) or ""
    return [m for m in text.split(",") if m]
