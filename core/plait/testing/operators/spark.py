"""The simulated Spark operator (see :mod:`plait.testing.operators`).

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
"""

from __future__ import annotations

import copy
import math
import re
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from plait.testing.kubeapi import ApiStatusError, KubeAPI
from plait.testing.operators.base import (
    Obj,
    _now,
    _Operator,
    _owned_by,
    _owner_reference,
    _parse_time,
)

SPARK_APPLICATIONS = "sparkapplications.sparkoperator.k8s.io"
DRIVER_CONTAINER = "spark-kubernetes-driver"


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

