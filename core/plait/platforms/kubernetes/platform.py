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

After an engine restart, :meth:`KubernetesPlatform.attach_python` finds the pod by its name in
the watch's cache, or the result it left, and follows it: nothing runs twice.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from plait.model.errors import PlaitError
from plait.model.status import Handle
from plait.model.wire import CommandWork, Placement, RemoteJob
from plait.platforms.kubernetes import pods
from plait.platforms.kubernetes.config import KubernetesConfig
from plait.platforms.kubernetes.errors import (
    KubernetesConfigError,
    KubernetesQuotaError,
    KubernetesRetryableError,
)
from plait.plugins.platform import Platform, ResultCallback
from plait.runtime.code import archive, source_root
from plait.storage.blobs import BlobStore

log = logging.getLogger(__name__)

Obj = dict[str, Any]

QUOTA_BACKOFF = (1.0, 30.0)
"""Seconds between creates a ResourceQuota refused: first, and most."""


@dataclass
class _Job:
    """One Python attempt's pod, as this process follows it."""

    job_id: str
    namespace: str
    name: str
    job_uri: str
    result_uri: str
    blobs: BlobStore
    done: ResultCallback
    seen: bool = False
    finishing: bool = False
    cancelled: bool = False
    waiting: str | None = None
    since: dict[str, float] = field(default_factory=dict)
    unwatch: Callable[[], None] | None = None


class KubernetesPlatform(Platform):
    """Python attempts as pods; see the module's docstring."""

    name = "kubernetes"
    places_work = True

    def __init__(self, config: KubernetesConfig | None = None, api_client: Any = None) -> None:
        self._config = config
        self._api_client = api_client
        self._objects: Any = None
        self._watches: Any = None
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.RLock()
        self._executor: ThreadPoolExecutor | None = None
        self._monitor: threading.Thread | None = None
        self._stopped = threading.Event()
        self._uploaded: set[str] = set()

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

    def python_slots(self) -> int:
        return self.config.max_pods

    # -- Python attempts -------------------------------------------------------------------

    def submit_python(self, job_id: str, payload: dict[str, Any], done: ResultCallback,
                      placement: Placement | None = None) -> None:
        if placement is None:
            raise PlaitError("the kubernetes platform places each attempt from its Placement; "
                             "the python task type passes one (this caller did not)")
        job = self._job(job_id, done, placement, BlobStore(payload["blobs"]))
        self._submit_work(self._create, job, payload, placement)

    def attach_python(self, job_id: str, done: ResultCallback, placement: Placement) -> bool:
        if self._objects is None:
            return False
        from plait.platforms.kubernetes.objects import POD

        namespace = self.config.namespace(placement.project, placement.domain)
        job = self._job(job_id, done, placement, BlobStore(self.config.blob_url))
        watch = self._watches.watch(POD, namespace)
        if watch.get(job.name) is None and not job.blobs.exists(job.result_uri):
            self._forget(job)
            return False
        job.seen = True
        job.unwatch = watch.on_change(job.name, lambda: self._examine(job))
        self._examine(job)
        return True

    def cancel_python(self, job_id: str) -> None:
        with self._lock:
            job = self._jobs.pop(job_id, None)
        if job is None:
            return
        job.cancelled = True
        if job.unwatch is not None:
            job.unwatch()
        self._submit_work(self._delete, job)

    def waiting(self, job_id: str) -> str | None:
        job = self._jobs.get(job_id)
        if job is None:
            return None
        if job.waiting:
            return job.waiting
        if job.since and self._watches is not None:
            from plait.platforms.kubernetes.objects import POD

            pod = self._watches.watch(POD, job.namespace).get(job.name)
            problem = pods.pending_problem(pod) if pod is not None else None
            return problem.message if problem is not None else None
        return None

    def close(self) -> None:
        """Finish the deletes already asked for, then stop the watches and threads."""
        self._stopped.set()  # a create waiting for quota gives up; queued deletes still run
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        with self._lock:
            watches = self._watches
            self._objects = self._watches = None
            self._jobs.clear()
        if watches is not None:
            watches.close()

    # -- command lines (container and process task types): not yet on this platform ---------

    def start(self, work: CommandWork) -> Handle:
        raise PlaitError(
            "the kubernetes platform runs Python tasks as pods; command-line tasks (container, "
            "spark, pytorch, papermill) do not run on it yet: run them with --platform local")

    # -- the work, in this platform's threads ----------------------------------------------

    def _job(self, job_id: str, done: ResultCallback, placement: Placement, blobs: BlobStore) -> _Job:
        namespace = self.config.namespace(placement.project, placement.domain)
        name = pods.identity(placement).name()
        folder = blobs.uri("k8s", name)
        job = _Job(job_id, namespace, name, f"{folder}/job.json", f"{folder}/result.json", blobs, done)
        with self._lock:
            self._jobs[job_id] = job
        return job

    def _forget(self, job: _Job) -> None:
        with self._lock:
            if self._jobs.get(job.job_id) is job:
                del self._jobs[job.job_id]
        if job.unwatch is not None:
            job.unwatch()

    def _submit_work(self, fn: Callable[..., None], *args: Any) -> None:
        self._connect()
        assert self._executor is not None
        self._executor.submit(self._guarded, fn, *args)

    def _guarded(self, fn: Callable[..., None], job: _Job, *args: Any) -> None:
        try:
            fn(job, *args)
        except Exception as exc:
            log.exception("kubernetes platform: %s of %s failed", fn.__name__, job.name)
            if fn is not self._delete:
                retryable = isinstance(exc, KubernetesRetryableError) or not isinstance(exc, PlaitError)
                self._end(job, {"status": "failed", "message": f"{type(exc).__name__}: {exc}",
                                "retryable": retryable, "error_kind": "system" if retryable else "user"})

    def _create(self, job: _Job, payload: dict[str, Any], placement: Placement) -> None:
        from plait.platforms.kubernetes.objects import POD

        code_uri = code_root = None
        ref = payload["ref"]
        root = source_root(ref["module"], ref.get("file"))
        if root is not None:
            packed = archive(root)
            code_uri = job.blobs.uri("code", f"{packed.digest}.tar.gz")
            if code_uri not in self._uploaded:
                if not job.blobs.exists(code_uri):
                    job.blobs.write_bytes(code_uri, packed.data)
                self._uploaded.add(code_uri)
            code_root = str(root)
        remote = RemoteJob(payload={k: v for k, v in payload.items() if k != "secrets"},
                           result_uri=job.result_uri, code_uri=code_uri, code_root=code_root,
                           secrets=placement.secrets)
        job.blobs.write_bytes(job.job_uri, remote.model_dump_json().encode())
        manifest = pods.python_pod(self.config, placement, job.namespace, job.job_uri,
                                   dict(payload.get("env") or {}))
        watch = self._watches.watch(POD, job.namespace)
        job.unwatch = watch.on_change(job.name, lambda: self._examine(job))
        delay = QUOTA_BACKOFF[0]
        while True:
            if job.cancelled or self._stopped.is_set():
                return
            try:
                created = self._objects.create_or_attach(manifest, job.namespace)
                break
            except KubernetesQuotaError as exc:
                job.waiting = (f"waiting for room in the ResourceQuota of namespace {job.namespace}: "
                               f"{exc.quota_message}")
                self._stopped.wait(delay)
                delay = min(QUOTA_BACKOFF[1], delay * 2)
        job.waiting = None
        watch.observe(created)
        self._examine(job)

    def _examine(self, job: _Job) -> None:
        """Look at the pod in the watch's cache; act when it ended or cannot start. Cheap."""
        from plait.platforms.kubernetes.objects import POD

        if job.finishing or job.cancelled or self._watches is None:
            return
        pod = self._watches.watch(POD, job.namespace).get(job.name)
        if pod is None:
            if job.seen:  # it was there, and went without us deleting it
                job.finishing = True
                self._submit_work(self._finish, job, None)
            return
        job.seen = True
        if pods.ended(pod):
            job.finishing = True
            self._submit_work(self._finish, job, pod)
            return
        problem = pods.pending_problem(pod)
        if problem is None:
            job.since.clear()
            return
        now = time.monotonic()
        for other in [k for k in job.since if k != problem.problem]:
            del job.since[other]
        since = job.since.setdefault(problem.problem, now)
        grace = {"image": self.config.image_pull_grace, "unschedulable": self.config.unschedulable_grace,
                 "config": self.config.config_error_grace}[problem.problem]
        if now - since >= grace:
            job.finishing = True
            self._submit_work(self._give_up, job, problem.message, grace)

    def _watch_graces(self) -> None:
        """Re-examine pods stuck before starting, so a grace period ends without an event."""
        while not self._stopped.wait(1.0):
            with self._lock:
                stuck = [j for j in self._jobs.values() if j.since and not j.finishing]
            for job in stuck:
                try:
                    self._examine(job)
                except Exception:
                    log.exception("kubernetes platform: examining %s failed", job.name)

    def _give_up(self, job: _Job, message: str, grace: float) -> None:
        self._delete(job)
        self._end(job, {"status": "failed", "message": f"{message} (for {grace:g}s)",
                        "retryable": False, "error_kind": "user"})

    def _finish(self, job: _Job, pod: Obj | None) -> None:
        result: dict[str, Any] | None = None
        if job.blobs.exists(job.result_uri):
            result = json.loads(job.blobs.read_bytes(job.result_uri))
        text = ""
        if pod is not None:
            try:
                text = self._objects.logs(job.namespace, job.name, pods.CONTAINER)
            except PlaitError as exc:
                text = f"(the pod's log could not be read: {exc})"
        if result is None:
            tail = "\n".join(text.strip().splitlines()[-30:])
            result = pods.failure(pod, tail)
        if text:
            result["stdout"] = text
        if pod is not None:
            self._delete(job)
        self._end(job, result)

    def _delete(self, job: _Job) -> None:
        from plait.platforms.kubernetes.objects import POD

        if self._objects is not None:
            self._objects.delete(POD, job.namespace, job.name)

    def _end(self, job: _Job, result: dict[str, Any]) -> None:
        self._forget(job)
        if not job.cancelled:
            job.done(result)
