"""The simulated training operator's PyTorchJob (see :mod:`plait.testing.operators`).

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
from datetime import UTC, datetime, timedelta

from plait.testing.kubeapi import ApiStatusError
from plait.testing.operators.base import (
    Obj,
    _now,
    _Operator,
    _owned_by,
    _owner_reference,
    _parse_time,
)

PYTORCH_JOBS = "pytorchjobs.kubeflow.org"
PYTORCH_CONTAINER = "pytorch"
PYTORCH_PORT_NAME = "pytorchjob-port"
PYTORCH_DEFAULT_PORT = 23456


_REPLICA_TYPES = ("Master", "Worker")


class TrainingOperator(_Operator):
    """The simulated kubeflow training-operator for PyTorchJobs; see the module doc."""

    kind = "PyTorchJob"
    resource = PYTORCH_JOBS
    controller_name = "pytorchjob-controller"

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
