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

**SparkOperator** follows kubeflow/spark-operator (v2.x, ``sparkoperator.k8s.io/v1beta2``):

- a new application (``status.applicationState.state`` empty) of ``spec.type`` Python is
  submitted: the driver pod is created as spark-submit and the operator's webhook build it,
  then the state is ``SUBMITTED`` with ``submissionID``, ``sparkApplicationId``
  (``spark-<32 hex>``, also the pod's ``spark-app-selector`` label),
  ``submissionAttempts``/``executionAttempts`` 1, ``lastSubmissionAttemptTime`` and
  ``driverInfo.podName``.
- the driver pod: named ``spec.driver.podName``, ``sparkConf["spark.kubernetes.driver.pod.
  name"]`` or ``<app>-driver``; owned by the application (``controller: true``, so deleting
  the application deletes it); labels ``spark-role=driver``, ``spark-app-selector``,
  ``spark-version``, ``sparkoperator.k8s.io/app-name``, ``.../launched-by-spark-operator``,
  ``.../submission-id``, plus the application's own labels and ``spec.driver.labels``;
  ``spec.driver.annotations``; ``restartPolicy: Never``; ``serviceAccountName`` from
  ``spec.driver.serviceAccount``; ``imagePullSecrets``, ``nodeSelector`` (spec and driver),
  ``tolerations``, ``hostAliases``, ``terminationGracePeriodSeconds``, and the
  ``spec.volumes`` that ``spec.driver.volumeMounts`` name. One container,
  ``spark-kubernetes-driver``, image ``spec.driver.image`` or ``spec.image``, ``env``
  (``spec.driver.env``, the deprecated ``envVars`` and ``envSecretKeyRefs`` too) and
  ``envFrom`` from the driver spec, and resources as Spark's ``BasicDriverFeatureStep``
  computes them: cpu request ``coreRequest`` or ``cores`` (default 1), cpu limit
  ``coreLimit``; memory request and limit ``memory`` (Spark's size syntax, ``1g`` = 1024 MiB,
  default 1g) plus the overhead (``memoryOverhead``, ``spark.driver.memoryOverhead``, or
  ``max(factor * memory, 384 MiB)`` with the factor 0.4 Spark uses for Python applications
  unless ``spark.driver.memoryOverheadFactor`` says otherwise), in ``Mi``: ``1g`` becomes
  ``1433Mi``; ``memoryLimit`` as the limit when given; ``gpu`` as a limit.
- the driver's command runs the application as the real driver does, but in Spark's LOCAL
  MODE, executors not being simulated: ``spark-submit --master local[N] --deploy-mode client
  --name <app> --conf k=v ... [--py-files ...] <main file> <arguments>``, where N is executor instances (``dynamicAllocation.maxExecutors`` when
  enabled; default 2) times executor cores (default 1); the confs are ``spec.sparkConf``,
  ``spec.hadoopConf`` as ``spark.hadoop.*`` and the driver's cores and memory;
  ``local://`` and ``file://`` are stripped from the main file and ``deps.pyFiles``. (In
  local mode the driver's own ``SparkContext.applicationId`` is ``local-<ms>``, not the
  ``sparkApplicationId`` of the status.)
  ``spark-submit`` is the one next to ``sys.executable`` (pyspark's pip package installs it
  there) or the ``spark_submit`` given.
- then it follows the driver pod, as ``updateDriverState`` does: Pending keeps
  ``SUBMITTED``; Running is ``RUNNING``; Succeeded is ``SUCCEEDING`` then ``COMPLETED``;
  Failed is ``FAILING`` then ``FAILED`` with ``applicationState.errorMessage`` ``driver
  container failed with ExitCode: N, Reason: R`` (from the driver container's terminated
  state; ``driver container status missing`` without one); ``terminationTime`` set when the
  driver ends. A driver pod gone while ``RUNNING`` (or still missing ``driver_grace``
  seconds after submission) is ``FAILING`` then ``FAILED`` with ``driver pod not found``.
  ``executorState`` stays empty (absent), as no executor pods exist.
- a driver pod that cannot be created (a ResourceQuota's 403, a name taken by a pod the
  application does not own) or an application this simulation cannot run (``spec.type``
  other than Python) is ``SUBMISSION_FAILED`` with the reason, then ``FAILED``. An
  application being deleted has its driver pod deleted; the garbage collector's propagation
  (the emulator's) deletes it too once the application is gone.

Not emulated (Spark): executors and their pods (local mode instead: the driver's process
runs every task), ``executorState``, Java/Scala/R applications, ``mode: client``, retries
(``restartPolicy`` OnFailure/Always: a failed application stays FAILED), ``timeToLiveSeconds``,
suspend/resume, ``spec.driver.template``, the web UI service and ingress, the driver PDB,
Prometheus monitoring, batch schedulers, ``spec.deps`` other than ``pyFiles``, main files on
remote file systems, the driver's ``podSecurityContext``, ``sidecars``, ``initContainers``,
``configMaps`` and ``secrets`` volumes, events.

**TrainingOperator** follows kubeflow/training-operator v1.9.0 (``kubeflow.org/v1``
``PyTorchJob``):

- on a new job: condition ``Created`` (reason ``PyTorchJobCreated``, ``PyTorchJob <name> is
  created.``), ``startTime``; one pod per replica of ``spec.pytorchReplicaSpecs`` Master and
  Worker (``replicas`` default 1), from the replica's template, named
  ``<job>-<master|worker>-<i>``, labels ``training.kubeflow.org/operator-name:
  pytorchjob-controller``, ``.../job-name``, ``.../replica-type`` (``master``/``worker``),
  ``.../replica-index`` and ``.../job-role: master`` on the master, owned by the job
  (``controller: true``); ``restartPolicy`` from the replica (default OnFailure; ExitCode
  becomes Never); the container ``pytorch`` gets the port ``pytorchjob-port`` 23456 when it
  has none (the real defaulting). A headless Service (``clusterIP: None``) per replica, named
  as its pod, selecting it, with the ``pytorch`` container's ports, owned by the job.
- the environment ``setPodEnv`` appends to EVERY container of a replica's pod:
  ``PYTHONUNBUFFERED=1``; with a Master: ``MASTER_PORT``, ``PET_MASTER_PORT`` (the Master's
  ``pytorchjob-port``), ``MASTER_ADDR``, ``PET_MASTER_ADDR`` (``<job>-master-0``),
  ``WORLD_SIZE`` (replicas in all times ``nprocPerNode`` when it is a number, else 1),
  ``RANK`` and ``PET_NODE_RANK`` (0 for the master, i+1 for worker i); ``PET_NPROC_PER_NODE``
  (``nprocPerNode``, defaulted to ``auto`` unless ``elasticPolicy.nProcPerNode`` is set);
  without an ``elasticPolicy`` ``PET_NNODES`` (replicas in all); with one
  ``PET_RDZV_ENDPOINT`` (``rdzvHost`` or ``<job>-worker-0``, ``rdzvPort`` or the Worker's
  port), ``PET_RDZV_BACKEND`` (default c10d), ``PET_NNODES`` (``min:max``, each defaulting to
  the other or to the Worker replicas), ``PET_MAX_RESTARTS``, ``PET_NPROC_PER_NODE``,
  ``PET_RDZV_ID``, ``PET_RDZV_CONF`` (``k=v,k=v``) and ``PET_STANDALONE`` where set.
- NOT WHAT THE REAL OPERATOR DOES, the cluster DNS's stand-in: every pod also gets
  ``hostAliases`` mapping each replica's service name to 127.0.0.1, which the simulated
  kubelet writes into the pod's ``/etc/hosts``, so ``MASTER_ADDR`` resolves here.
- status, as ``UpdateJobStatus`` writes it: ``replicaStatuses`` per type (``active``: pods
  Running and not being deleted, ``succeeded``, ``failed``: Failed pods and Running ones being
  deleted; ``selector``); condition ``Running`` (``PyTorchJobRunning``) while the master runs
  (without a Master: while a worker runs); ``Succeeded`` (``PyTorchJob <name> is
  successfully completed.``) once every Master replica succeeded (without a Master: every
  worker, or any with an ``elasticPolicy``), ``Running`` then turning False; ``Failed``
  (``PyTorchJob <name> is failed because <n> <Type> replica(s) failed.``) when a replica
  failed and fewer than all of its type are running or done; ``completionTime`` with either.
  A failed job's conditions never change again.
- when the job has finished, ``runPolicy.cleanPodPolicy`` (default None, as v1.9.0
  defaults it: nothing deleted; Running: pods still Running or Pending, and their services;
  All: every pod and its service) and ``ttlSecondsAfterFinished`` (the job deleted that long
  after ``completionTime``); when the job succeeded, replicas still active are counted as
  succeeded.

Not emulated (PyTorchJob): restarts (a failed replica fails the job whatever its
``restartPolicy``; the real operator recreates it for OnFailure, Always and a retryable
ExitCode, and counts ``backoffLimit``), ``activeDeadlineSeconds``, ``suspend``, gang
scheduling (``schedulingPolicy``), the workers' ``init-pytorch`` init container that waits
for the master's DNS name, HPA for elastic jobs, ``managedBy``, replica types other than
Master and Worker, scaling a running job, events. All replicas share this machine's network:
two replicas listening on one port collide.
"""

from __future__ import annotations

import copy
import math
import re
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from plait.testing.kubeapi import ApiStatusError, KubeAPI, WatchEvent

Obj = dict[str, Any]

__all__ = ["SparkOperator", "TrainingOperator"]

SPARK_APPLICATIONS = "sparkapplications.sparkoperator.k8s.io"
PYTORCH_JOBS = "pytorchjobs.kubeflow.org"
DRIVER_CONTAINER = "spark-kubernetes-driver"
PYTORCH_CONTAINER = "pytorch"
PYTORCH_PORT_NAME = "pytorchjob-port"
PYTORCH_DEFAULT_PORT = 23456
_TICK = 0.2  # how often timers (grace periods, TTLs) are looked at


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _owner_reference(obj: Obj) -> Obj:
    meta = obj["metadata"]
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}


def _owned_by(obj: Obj, owner: Obj) -> bool:
    uid = owner["metadata"]["uid"]
    return any(r.get("uid") == uid and r.get("controller")
               for r in obj["metadata"].get("ownerReferences") or [])


class _Operator:
    """A controller on the emulator's subscription: reconcile an owner on each change."""

    kind = ""
    resource = ""

    def __init__(self, api: KubeAPI) -> None:
        self.api = api
        self.created: list[Obj] = []
        """Every object this operator created, as it sent it to the API server."""
        self.errors: list[BaseException] = []
        self._sub: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._timers: dict[tuple[str, str], float] = {}  # (namespace, name) -> monotonic time

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> _Operator:
        self._stopping.clear()
        self._sub = self.api.subscribe()  # every kind: the owner's and the pods' events
        self._thread = threading.Thread(target=self._loop, name=f"operator-{self.kind}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop reconciling; raise the first unexpected error a reconcile met, if any."""
        self._stopping.set()
        if self._sub is not None:
            self._sub.close()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if self.errors:
            raise RuntimeError(f"the simulated {self.kind} operator failed") from self.errors[0]

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- the loop -----------------------------------------------------------------------

    def _loop(self) -> None:
        for obj in self.api.objects(self.resource):  # what exists already, after subscribing
            self._reconcile_safely(obj["metadata"]["namespace"], obj["metadata"]["name"])
        while not self._stopping.is_set():
            event = self._sub.get(timeout=_TICK)
            try:
                keys = self._keys(event) if event is not None else []
            except Exception as e:  # noqa: BLE001 - kept and raised by stop(), never lost
                self.errors.append(e)
                keys = []
            for key in keys:
                self._reconcile_safely(*key)
            now = time.monotonic()
            for key, due in list(self._timers.items()):
                if due <= now:
                    del self._timers[key]
                    self._reconcile_safely(*key)

    def _keys(self, event: WatchEvent) -> list[tuple[str, str]]:
        meta = event.object.get("metadata") or {}
        if event.resource == self.resource:
            return [(meta.get("namespace", ""), meta["name"])]
        if event.resource in ("pods", "services"):
            return [(meta.get("namespace", ""), r["name"]) for r in meta.get("ownerReferences") or []
                    if r.get("kind") == self.kind and r.get("controller")]
        return []

    def _reconcile_safely(self, namespace: str, name: str) -> None:
        try:
            self.reconcile(namespace, name)
        except ApiStatusError as e:
            if e.code not in (404, 409):  # gone or changed meanwhile: a later event says so
                self._timers[(namespace, name)] = time.monotonic() + _TICK
        except Exception as e:  # noqa: BLE001 - kept and raised by stop(), never lost
            self.errors.append(e)

    def _after(self, namespace: str, name: str, seconds: float) -> None:
        due = time.monotonic() + max(seconds, 0.0)
        key = (namespace, name)
        self._timers[key] = min(due, self._timers.get(key, due))

    def reconcile(self, namespace: str, name: str) -> None:
        raise NotImplementedError

    def _create(self, resource: str, obj: Obj, namespace: str) -> Obj:
        created = self.api.create(resource, obj, namespace)
        self.created.append(copy.deepcopy(obj))
        return created


# --------------------------------------------------------------------------------------------
# Spark


class SparkOperator(_Operator):
    """The simulated kubeflow spark-operator: SparkApplications as local-mode drivers.

    ``spark_submit`` is the ``spark-submit`` the driver runs (default: the one next to
    ``sys.executable``, else ``spark-submit`` found on the kubelet's ``PATH``);
    ``driver_grace`` is how long a submitted application's driver pod may be missing before
    the application fails (the operator's ``--driver-pod-creation-grace-period``).
    """

    kind = "SparkApplication"
    resource = SPARK_APPLICATIONS

    def __init__(self, api: KubeAPI, *, spark_submit: str | None = None,
                 driver_grace: float = 10.0) -> None:
        super().__init__(api)
        beside = Path(sys.executable).parent / "spark-submit"
        self.spark_submit = spark_submit or (str(beside) if beside.exists() else "spark-submit")
        self.driver_grace = driver_grace

    def start(self) -> SparkOperator:
        super().start()
        return self

    def __enter__(self) -> SparkOperator:
        return self.start()

    def reconcile(self, namespace: str, name: str) -> None:
        app = self.api.get(self.resource, name, namespace)
        if app is None:
            return
        if app["metadata"].get("deletionTimestamp"):
            self._delete_pod(namespace, _driver_pod_name(app))
            return
        status = copy.deepcopy(app.get("status") or {})
        state = (status.get("applicationState") or {}).get("state") or ""
        if state == "":
            status = self._submit(app, status)
        elif state in ("SUBMITTED", "RUNNING"):
            status = self._follow_driver(app, status)
        elif state == "SUCCEEDING":
            status["applicationState"]["state"] = "COMPLETED"
        elif state == "FAILING":
            status["applicationState"]["state"] = "FAILED"
        elif state == "SUBMISSION_FAILED":
            status["applicationState"]["state"] = "FAILED"
            status["terminationTime"] = _now()
        if status != (app.get("status") or {}):
            self.api.set_status(self.resource, name, status, namespace)

    def _submit(self, app: Obj, status: Obj) -> Obj:
        meta, spec = app["metadata"], app.get("spec") or {}
        status = {**status, "submissionID": str(uuid.uuid4()),
                  "lastSubmissionAttemptTime": _now(),
                  "submissionAttempts": int(status.get("submissionAttempts") or 0) + 1,
                  "driverInfo": {**(status.get("driverInfo") or {}), "podName": _driver_pod_name(app)}}
        app_id = f"spark-{uuid.uuid4().hex}"
        try:
            if spec.get("type") != "Python":
                raise _SubmissionError(f"the simulated spark operator runs only Python applications, "
                                       f"not spec.type {spec.get('type')!r}")
            pod = self._driver_pod(app, app_id, status["submissionID"])
            try:
                self._create("pods", pod, meta["namespace"])
            except ApiStatusError as e:
                if e.code != 409:
                    raise _SubmissionError(str(e)) from e
                existing = self.api.get("pods", pod["metadata"]["name"], meta["namespace"])
                if existing is None or not _owned_by(existing, app):
                    raise _SubmissionError(str(e)) from e
                app_id = existing["metadata"].get("labels", {}).get("spark-app-selector", app_id)
        except _SubmissionError as e:
            status["applicationState"] = {"state": "SUBMISSION_FAILED",
                                          "errorMessage": f"failed to submit spark application: {e}"}
            return status
        status["applicationState"] = {"state": "SUBMITTED"}
        status["sparkApplicationId"] = app_id
        status["executionAttempts"] = int(status.get("executionAttempts") or 0) + 1
        self._after(meta["namespace"], meta["name"], self.driver_grace)
        return status

    def _follow_driver(self, app: Obj, status: Obj) -> Obj:
        meta = app["metadata"]
        state = status["applicationState"]["state"]
        pod = self.api.get("pods", _driver_pod_name(app), meta["namespace"])
        if pod is not None and not _owned_by(pod, app):
            pod = None
        if pod is None:
            submitted = status.get("lastSubmissionAttemptTime")
            waited = (datetime.now(UTC) - _parse_time(submitted)).total_seconds() if submitted else math.inf
            if state == "SUBMITTED" and waited < self.driver_grace:
                self._after(meta["namespace"], meta["name"], self.driver_grace - waited)
                return status
            status["applicationState"] = {"state": "FAILING", "errorMessage": "driver pod not found"}
            status["terminationTime"] = _now()
            return status
        labels = pod["metadata"].get("labels") or {}
        if labels.get("spark-app-selector"):
            status["sparkApplicationId"] = labels["spark-app-selector"]
        phase = (pod.get("status") or {}).get("phase")
        terminated = _terminated(pod, DRIVER_CONTAINER)
        if phase == "Pending":
            driver = "SUBMITTED"
        elif phase == "Running":
            driver = "RUNNING" if terminated is None else (
                "SUCCEEDING" if terminated.get("exitCode") == 0 else "FAILING")
        elif phase == "Succeeded":
            driver = "SUCCEEDING"
        elif phase == "Failed":
            driver = "SUCCEEDING" if terminated is not None and terminated.get("exitCode") == 0 else "FAILING"
        else:
            driver = "UNKNOWN"
        new_state: Obj = {"state": driver}
        if driver in ("SUCCEEDING", "FAILING"):
            status.setdefault("terminationTime", _now())
            if driver == "FAILING":
                if terminated is None:
                    new_state["errorMessage"] = "driver container status missing"
                elif terminated.get("exitCode") != 0:
                    new_state["errorMessage"] = (f"driver container failed with ExitCode: "
                                                 f"{terminated.get('exitCode')}, Reason: {terminated.get('reason')}")
        status["applicationState"] = new_state
        return status

    def _driver_pod(self, app: Obj, app_id: str, submission_id: str) -> Obj:
        meta, spec = app["metadata"], app.get("spec") or {}
        driver = spec.get("driver") or {}
        labels = {**(meta.get("labels") or {}), **(driver.get("labels") or {}),
                  "spark-app-selector": app_id, "spark-role": "driver",
                  "sparkoperator.k8s.io/app-name": meta["name"],
                  "sparkoperator.k8s.io/launched-by-spark-operator": "true",
                  "sparkoperator.k8s.io/submission-id": submission_id}
        if spec.get("sparkVersion"):
            labels["spark-version"] = str(spec["sparkVersion"])
        env = [copy.deepcopy(e) for e in driver.get("env") or []]
        env += [{"name": k, "value": str(v)} for k, v in (driver.get("envVars") or {}).items()]
        env += [{"name": k, "valueFrom": {"secretKeyRef": {"name": ref["name"], "key": ref["key"]}}}
                for k, ref in (driver.get("envSecretKeyRefs") or {}).items()]
        container: Obj = {"name": DRIVER_CONTAINER, "image": driver.get("image") or spec.get("image") or "",
                          "command": self._command(app), "resources": _driver_resources(spec)}
        if env:
            container["env"] = env
        if driver.get("envFrom"):
            container["envFrom"] = copy.deepcopy(driver["envFrom"])
        if driver.get("volumeMounts"):
            container["volumeMounts"] = copy.deepcopy(driver["volumeMounts"])
        pod_spec: Obj = {"restartPolicy": "Never", "containers": [container]}
        if driver.get("serviceAccount"):
            pod_spec["serviceAccountName"] = driver["serviceAccount"]
        mounted = {m.get("name") for m in driver.get("volumeMounts") or []}
        volumes = [copy.deepcopy(v) for v in spec.get("volumes") or [] if v.get("name") in mounted]
        if volumes:
            pod_spec["volumes"] = volumes
        if spec.get("imagePullSecrets"):
            pod_spec["imagePullSecrets"] = [{"name": n} for n in spec["imagePullSecrets"]]
        selector = {**(spec.get("nodeSelector") or {}), **(driver.get("nodeSelector") or {})}
        if selector:
            pod_spec["nodeSelector"] = selector
        for key in ("tolerations", "hostAliases", "terminationGracePeriodSeconds", "schedulerName",
                    "priorityClassName"):
            if driver.get(key) is not None:
                pod_spec[key] = copy.deepcopy(driver[key])
        pod_meta: Obj = {"name": _driver_pod_name(app), "namespace": meta["namespace"], "labels": labels,
                         "ownerReferences": [_owner_reference(app)]}
        if driver.get("annotations"):
            pod_meta["annotations"] = dict(driver["annotations"])
        return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec}

    def _command(self, app: Obj) -> list[str]:
        spec = app.get("spec") or {}
        driver, executor = spec.get("driver") or {}, spec.get("executor") or {}
        dynamic = spec.get("dynamicAllocation") or {}
        instances = int(executor.get("instances") or 2)
        if dynamic.get("enabled"):
            instances = int(dynamic.get("maxExecutors") or dynamic.get("initialExecutors") or instances)
        threads = max(1, instances * int(executor.get("cores") or 1))
        conf: dict[str, str] = {}
        if driver.get("cores") is not None:
            conf["spark.driver.cores"] = str(driver["cores"])
        if driver.get("memory"):
            conf["spark.driver.memory"] = str(driver["memory"])
        conf.update({str(k): str(v) for k, v in (spec.get("sparkConf") or {}).items()})
        conf.update({f"spark.hadoop.{k}": str(v) for k, v in (spec.get("hadoopConf") or {}).items()})
        argv = [self.spark_submit, "--master", f"local[{threads}]", "--deploy-mode", "client",
                "--name", app["metadata"]["name"]]
        for k, v in conf.items():
            argv += ["--conf", f"{k}={v}"]
        py_files = [_local_path(f) for f in (spec.get("deps") or {}).get("pyFiles") or []]
        if py_files:
            argv += ["--py-files", ",".join(py_files)]
        argv.append(_local_path(str(spec.get("mainApplicationFile") or "")))
        return argv + [str(a) for a in spec.get("arguments") or []]

    def _delete_pod(self, namespace: str, name: str) -> None:
        try:
            self.api.delete("pods", name, namespace)
        except ApiStatusError as e:
            if e.code != 404:
                raise


class _SubmissionError(Exception):
    """Why spark-submit would have failed: the application goes SUBMISSION_FAILED."""


def _driver_pod_name(app: Obj) -> str:
    spec = app.get("spec") or {}
    return str((spec.get("driver") or {}).get("podName")
               or (spec.get("sparkConf") or {}).get("spark.kubernetes.driver.pod.name")
               or f"{app['metadata']['name']}-driver")


def _local_path(uri: str) -> str:
    for scheme in ("local://", "file://"):
        if uri.startswith(scheme):
            return uri[len(scheme):]
    return uri


_SIZE = re.compile(r"^\s*(\d+)\s*([kmgtp]?)b?\s*$", re.IGNORECASE)


def _mib(text: str) -> int:
    """Spark's size syntax in MiB (``JavaUtils.byteStringAsMb``: no suffix means MiB)."""
    m = _SIZE.match(str(text))
    if m is None:
        raise _SubmissionError(f"invalid memory size {text!r}: expected a number with k, m, g, t or p")
    shift = {"k": -10, "": 0, "m": 0, "g": 10, "t": 20, "p": 30}[m.group(2).lower()]
    value = int(m.group(1))
    return value << shift if shift >= 0 else value >> -shift


def _driver_resources(spec: Obj) -> Obj:
    driver, conf = spec.get("driver") or {}, spec.get("sparkConf") or {}
    memory = _mib(driver.get("memory") or conf.get("spark.driver.memory") or "1g")
    overhead_text = driver.get("memoryOverhead") or conf.get("spark.driver.memoryOverhead")
    if overhead_text:
        overhead = _mib(overhead_text)
    else:
        factor = float(conf.get("spark.driver.memoryOverheadFactor")
                       or conf.get("spark.kubernetes.memoryOverheadFactor") or 0.4)
        floor = _mib(conf.get("spark.driver.minMemoryOverhead") or "384m")
        overhead = max(int(factor * memory), floor)
    requests = {"cpu": str(driver.get("coreRequest") or driver.get("cores") or 1),
                "memory": f"{memory + overhead}Mi"}
    limits: Obj = {"memory": str(driver["memoryLimit"]) if driver.get("memoryLimit") else requests["memory"]}
    if driver.get("coreLimit"):
        limits["cpu"] = str(driver["coreLimit"])
    gpu = driver.get("gpu") or {}
    if gpu.get("name"):
        limits[str(gpu["name"])] = str(gpu.get("quantity") or 1)
    return {"requests": requests, "limits": limits}


def _terminated(pod: Obj, container: str) -> Obj | None:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == container:
            term: Obj | None = (cs.get("state") or {}).get("terminated")
            return term
    return None


# --------------------------------------------------------------------------------------------
# PyTorchJob


_REPLICA_TYPES = ("Master", "Worker")


class TrainingOperator(_Operator):
    """The simulated kubeflow training-operator for PyTorchJobs; see the module doc."""

    kind = "PyTorchJob"
    resource = PYTORCH_JOBS
    controller_name = "pytorchjob-controller"

    def start(self) -> TrainingOperator:
        super().start()
        return self

    def __enter__(self) -> TrainingOperator:
        return self.start()

    def reconcile(self, namespace: str, name: str) -> None:
        job = self.api.get(self.resource, name, namespace)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return  # the garbage collector deletes what the job owns
        spec = job.get("spec") or {}
        replicas = _replica_specs(spec)
        old = job.get("status") or {}
        status = copy.deepcopy(old)
        conds: list[Obj] = status.setdefault("conditions", [])
        if not any(c.get("type") == "Created" for c in conds):
            _set_condition(conds, "Created", "True", "PyTorchJobCreated", f"PyTorchJob {name} is created.")
        pods = [p for p in self.api.objects("pods", namespace,
                                            label_selector=f"training.kubeflow.org/job-name={name}")
                if _owned_by(p, job)]
        if _finished(conds):
            self._clean_up(job, status, pods)
        else:
            status.setdefault("startTime", _now())
            counts: dict[str, Obj] = {}
            for rtype, rspec in replicas.items():
                counts[rtype] = self._reconcile_replicas(job, rtype, rspec, pods)
            status["replicaStatuses"] = counts
            self._update_conditions(job, replicas, status)
        if status != old:
            self.api.set_status(self.resource, name, status, namespace)

    # ---- pods and services --------------------------------------------------------------

    def _reconcile_replicas(self, job: Obj, rtype: str, rspec: Obj, pods: list[Obj]) -> Obj:
        rt = rtype.lower()
        mine = [p for p in pods if (p["metadata"].get("labels") or {}).get("training.kubeflow.org/replica-type") == rt]
        by_index: dict[str, Obj] = {}
        for p in mine:
            by_index.setdefault((p["metadata"].get("labels") or {}).get("training.kubeflow.org/replica-index", ""), p)
        counts: Obj = {"active": 0, "failed": 0, "succeeded": 0,
                       "selector": ",".join(f"{k}={v}" for k, v in sorted(self._labels(job, rt).items()))}
        for index in range(int(rspec.get("replicas", 1))):
            pod = by_index.get(str(index))
            if pod is None:
                self._create_replica(job, rtype, rspec, index)
                continue
            phase = (pod.get("status") or {}).get("phase")
            if phase == "Running":
                counts["failed" if pod["metadata"].get("deletionTimestamp") else "active"] += 1
            elif phase == "Succeeded":
                counts["succeeded"] += 1
            elif phase == "Failed":
                counts["failed"] += 1
        return counts

    def _labels(self, job: Obj, rt: str) -> dict[str, str]:
        return {"training.kubeflow.org/operator-name": self.controller_name,
                "training.kubeflow.org/job-name": job["metadata"]["name"].replace("/", "-"),
                "training.kubeflow.org/replica-type": rt}

    def _create_replica(self, job: Obj, rtype: str, rspec: Obj, index: int) -> None:
        meta, spec = job["metadata"], job.get("spec") or {}
        rt = rtype.lower()
        name = f"{meta['name']}-{rt}-{index}"
        template = copy.deepcopy(rspec.get("template") or {})
        tmeta, pod_spec = template.get("metadata") or {}, template.get("spec") or {}
        labels = {**(tmeta.get("labels") or {}), **self._labels(job, rt),
                  "training.kubeflow.org/replica-index": str(index)}
        if rtype == "Master" or ("Master" not in _replica_specs(spec) and index == 0):
            labels["training.kubeflow.org/job-role"] = "master"
        _default_port(pod_spec)
        env = _pytorch_env(job, rt, index)
        for c in pod_spec.get("containers") or []:
            c["env"] = list(c.get("env") or []) + env
        policy = rspec.get("restartPolicy") or "OnFailure"
        pod_spec["restartPolicy"] = "Never" if policy == "ExitCode" else policy
        aliases = [f"{meta['name']}-{t.lower()}-{i}" for t, r in _replica_specs(spec).items()
                   for i in range(int(r.get("replicas", 1)))]
        pod_spec["hostAliases"] = list(pod_spec.get("hostAliases") or []) + [
            {"ip": "127.0.0.1", "hostnames": aliases}]
        pod_meta: Obj = {"name": name, "namespace": meta["namespace"], "labels": labels,
                         "ownerReferences": [_owner_reference(job)]}
        if tmeta.get("annotations"):
            pod_meta["annotations"] = dict(tmeta["annotations"])
        self._create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec},
                     meta["namespace"])
        if self.api.get("services", name, meta["namespace"]) is None:
            svc_labels = {**self._labels(job, rt), "training.kubeflow.org/replica-index": str(index)}
            ports = [{"name": p["name"], "port": p["containerPort"]} for c in pod_spec.get("containers") or []
                     if c.get("name") == PYTORCH_CONTAINER for p in c.get("ports") or [] if p.get("name")]
            self._create("services", {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": meta["namespace"], "labels": svc_labels,
                             "ownerReferences": [_owner_reference(job)]},
                "spec": {"clusterIP": "None", "selector": svc_labels, "ports": ports}}, meta["namespace"])

    # ---- status -------------------------------------------------------------------------

    def _update_conditions(self, job: Obj, replicas: dict[str, Obj], status: Obj) -> None:
        name, spec = job["metadata"]["name"], job.get("spec") or {}
        conds: list[Obj] = status["conditions"]
        for rtype, rspec in replicas.items():
            counts = status["replicaStatuses"][rtype]
            wanted = int(rspec.get("replicas", 1))
            expected = wanted - counts["succeeded"]
            running, failed = counts["active"], counts["failed"]
            if "Master" in replicas:
                if rtype == "Master":
                    if running > 0:
                        _set_condition(conds, "Running", "True", "PyTorchJobRunning",
                                       f"PyTorchJob {name} is running.")
                    if expected == 0:
                        status.setdefault("completionTime", _now())
                        _set_condition(conds, "Succeeded", "True", "PyTorchJobSucceeded",
                                       f"PyTorchJob {name} is successfully completed.")
                        return
            elif rtype == "Worker":
                if expected == 0 or (spec.get("elasticPolicy") is not None and counts["succeeded"] > 0):
                    status.setdefault("completionTime", _now())
                    _set_condition(conds, "Succeeded", "True", "PyTorchJobSucceeded",
                                   f"PyTorchJob {job['metadata']['namespace']}/{name} successfully completed.")
                elif running > 0:
                    _set_condition(conds, "Running", "True", "PyTorchJobRunning",
                                   f"PyTorchJob {job['metadata']['namespace']}/{name} is running.")
            if failed > 0 and wanted > counts["succeeded"] + running:
                status.setdefault("completionTime", _now())
                _set_condition(conds, "Failed", "True", "PyTorchJobFailed",
                               f"PyTorchJob {name} is failed because {failed} {rtype} replica(s) failed.")

    def _clean_up(self, job: Obj, status: Obj, pods: list[Obj]) -> None:
        meta, spec = job["metadata"], job.get("spec") or {}
        run_policy = spec.get("runPolicy") or {}
        policy = run_policy.get("cleanPodPolicy") or "None"
        if policy != "None":
            for pod in pods:
                phase = (pod.get("status") or {}).get("phase")
                if policy == "Running" and phase not in ("Running", "Pending"):
                    continue
                for resource in ("pods", "services"):
                    try:
                        self.api.delete(resource, pod["metadata"]["name"], meta["namespace"])
                    except ApiStatusError as e:
                        if e.code != 404:
                            raise
        if _condition_true(status["conditions"], "Succeeded"):
            for counts in (status.get("replicaStatuses") or {}).values():
                counts["succeeded"] = counts.get("succeeded", 0) + counts.get("active", 0)
                counts["active"] = 0
        ttl = run_policy.get("ttlSecondsAfterFinished")
        if ttl is not None and status.get("completionTime"):
            expires = _parse_time(status["completionTime"]) + timedelta(seconds=int(ttl))
            left = (expires - datetime.now(UTC)).total_seconds()
            if left <= 0:
                self.api.delete(self.resource, meta["name"], meta["namespace"])
            else:
                self._after(meta["namespace"], meta["name"], left)


def _replica_specs(spec: Obj) -> dict[str, Obj]:
    """The Master and Worker replica specs, in that order, their keys in camel case."""
    given = {str(k).lower(): v for k, v in (spec.get("pytorchReplicaSpecs") or {}).items()}
    return {t: given[t.lower()] or {} for t in _REPLICA_TYPES if t.lower() in given}


def _container_port(rspec: Obj) -> int | None:
    for c in ((rspec.get("template") or {}).get("spec") or {}).get("containers") or []:
        if c.get("name") == PYTORCH_CONTAINER:
            for p in c.get("ports") or []:
                if p.get("name") == PYTORCH_PORT_NAME:
                    return int(p["containerPort"])
            return PYTORCH_DEFAULT_PORT  # the defaulting adds it
    return None


def _default_port(pod_spec: Obj) -> None:
    for c in pod_spec.get("containers") or []:
        if c.get("name") == PYTORCH_CONTAINER:
            if not any(p.get("name") == PYTORCH_PORT_NAME for p in c.get("ports") or []):
                c["ports"] = list(c.get("ports") or []) + [
                    {"name": PYTORCH_PORT_NAME, "containerPort": PYTORCH_DEFAULT_PORT}]
            return


def _pytorch_env(job: Obj, rt: str, index: int) -> list[Obj]:
    """What the training operator's ``setPodEnv`` appends to each container (v1.9.0)."""
    name, spec = job["metadata"]["name"], job.get("spec") or {}
    replicas = _replica_specs(spec)
    total = sum(int(r.get("replicas", 1)) for r in replicas.values())
    elastic = spec.get("elasticPolicy")
    nproc = spec.get("nprocPerNode")
    if nproc is None and (elastic is None or elastic.get("nProcPerNode") is None):
        nproc = "auto"  # setDefaultNprocPerNode
    per_node = int(nproc) if nproc is not None and str(nproc).isdigit() else 1

    def var(k: str, v: object) -> Obj:
        return {"name": k, "value": str(v)}

    env = [var("PYTHONUNBUFFERED", "1")]
    if "Master" in replicas:
        port = _container_port(replicas["Master"])
        if port is None:
            raise ValueError(f"PyTorchJob {name}: the Master has no container named {PYTORCH_CONTAINER!r}, "
                             "so no port named pytorchjob-port (the real operator fails the same way)")
        addr = f"{name}-master-0"
        rank = index + 1 if rt == "worker" else index
        env += [var("MASTER_PORT", port), var("PET_MASTER_PORT", port), var("MASTER_ADDR", addr),
                var("PET_MASTER_ADDR", addr), var("WORLD_SIZE", total * per_node), var("RANK", rank),
                var("PET_NODE_RANK", rank)]
    if nproc is not None:
        env.append(var("PET_NPROC_PER_NODE", nproc))
    if elastic is None:
        env.append(var("PET_NNODES", total))
        return env
    worker = replicas.get("Worker") or {}
    host = elastic.get("rdzvHost") or f"{name}-worker-0"
    port = elastic.get("rdzvPort") or _container_port(worker) or PYTORCH_DEFAULT_PORT
    env.append(var("PET_RDZV_ENDPOINT", f"{host}:{port}"))
    env.append(var("PET_RDZV_BACKEND", elastic.get("rdzvBackend") or "c10d"))
    low, high = elastic.get("minReplicas"), elastic.get("maxReplicas")
    if low is None and high is None:
        env.append(var("PET_NNODES", int(worker.get("replicas", 1))))
    else:
        env.append(var("PET_NNODES", f"{low if low is not None else high}:{high if high is not None else low}"))
    if elastic.get("maxRestarts") is not None:
        env.append(var("PET_MAX_RESTARTS", elastic["maxRestarts"]))
    if elastic.get("nProcPerNode") is not None:
        env.append(var("PET_NPROC_PER_NODE", elastic["nProcPerNode"]))
    if elastic.get("rdzvId") is not None:
        env.append(var("PET_RDZV_ID", elastic["rdzvId"]))
    if elastic.get("rdzvConf"):
        env.append(var("PET_RDZV_CONF", ",".join(f"{c['key']}={c['value']}" for c in elastic["rdzvConf"])))
    if elastic.get("standalone"):
        env.append(var("PET_STANDALONE", ""))
    return env


def _condition_true(conds: list[Obj], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in conds)


def _finished(conds: list[Obj]) -> bool:
    return _condition_true(conds, "Succeeded") or _condition_true(conds, "Failed")


def _set_condition(conds: list[Obj], kind: str, state: str, reason: str, message: str) -> None:
    """The training operator's ``setCondition``: a failed job's conditions never change; the
    same status and reason change nothing; Succeeded or Failed turn Running False."""
    if _condition_true(conds, "Failed"):
        return
    current = next((c for c in conds if c.get("type") == kind), None)
    if current is not None and current.get("status") == state and current.get("reason") == reason:
        return
    now = _now()
    new = {"type": kind, "status": state, "reason": reason, "message": message,
           "lastUpdateTime": now, "lastTransitionTime": now}
    if current is not None and current.get("status") == state:
        new["lastTransitionTime"] = current.get("lastTransitionTime", now)
    kept = []
    for c in conds:
        if c.get("type") == kind or (kind, c.get("type")) in (("Restarting", "Running"), ("Running", "Restarting")):
            continue
        if kind in ("Failed", "Succeeded") and c.get("type") == "Running":
            c = {**c, "status": "False"}
        kept.append(c)
    conds[:] = kept + [new]
