"""A simulated node for :class:`~plait.testing.kubeapi.KubeAPI`: a scheduler and a kubelet.

The emulator stores pods; nothing runs them. :class:`Kubelet` is the one node of the emulated
cluster, driven by the emulator's in-process subscription (no HTTP polling)::

    with KubeAPI(graceful_pods=True) as kube, Kubelet(kube, capacity={"cpu": "2"}) as node:
        CoreV1Api(kube.api_client()).create_namespaced_pod("default", manifest)
        kube.wait(lambda: node.phase("default", "p") == "Succeeded")

What it does, as the real scheduler and kubelet do (restartPolicy ``Never``):

- scheduling against a fixed ``capacity`` (``cpu``, ``memory``, ``nvidia.com/gpu``, any
  extended resource): a pod's request is the sum of its containers' requests, or the largest
  init container's where that is larger (a limit without a request is the request). A pod
  that does not fit what is free stays Pending with the condition ``PodScheduled=False``,
  reason ``Unschedulable`` and the scheduler's message (``0/1 nodes are available: 1
  Insufficient cpu.``) and is bound (``spec.nodeName``, ``PodScheduled=True``) once enough is
  freed by pods that finish or go. Pods that already name this node are run as they are; pods
  for another ``schedulerName`` or node are left alone.
- running: init containers one after the other, each to completion (a failing one fails the
  pod, ``status.initContainerStatuses``), then every container at once, each a real local
  process (``command`` + ``args``, with ``$(VAR)`` expanded; ``workingDir``, created when it
  is missing). THE IMAGE IS NOT RUN: every container runs on this machine's own filesystem
  and programs; a container without ``command`` (one relying on its image's entrypoint) ends
  with ``StartError``, as does a command not found on ``PATH``.
- environment: ``value``, ``valueFrom`` (``secretKeyRef`` and ``configMapKeyRef`` read from
  the emulator's objects, Secrets' base64 ``data`` decoded; ``fieldRef`` for the pod's name,
  namespace, uid, node, IPs, labels and annotations), ``envFrom`` (Secrets and ConfigMaps,
  with ``prefix``); ``optional`` honoured. A missing Secret or ConfigMap (or key) leaves the
  container Waiting with reason ``CreateContainerConfigError`` and the kubelet's message
  (``secret "s" not found``) until it appears. The "image's" environment is ``PATH``,
  ``HOME=/root`` and ``HOSTNAME`` (``image_env`` replaces the first two), plus
  ``KUBERNETES_SERVICE_HOST``/``PORT`` pointing at the emulator, as every real pod gets.
- volumes: every ``emptyDir`` is a real folder per pod, shared by its containers (what an
  init container writes there the main container reads), bind-mounted at each container's
  ``volumeMounts`` paths (``subPath``, ``readOnly`` too) in a private mount namespace:
  ``unshare -m --propagation private`` around the container's process builds a root of its
  own (a tmpfs holding bind mounts of the host's top-level entries), creates the mount points
  there, so a path such as ``/data/in`` never appears on the host, ``mount --bind``s each
  emptyDir and ``chroot``s into it. This needs root (the kubelet refuses to start otherwise).
  Other volume kinds are not mounted.
- ``hostAliases``: written into the container's own ``/etc/hosts`` (bound over it in the
  private mount namespace: the host's entries, then ``# Entries added by HostAliases.`` and
  one ``ip<TAB>hostname...`` line per alias, as the kubelet's managed hosts file ends), so a
  name such as a training job's master service resolves on this machine. A pod without
  aliases sees the host's ``/etc/hosts`` unchanged.
- status: phase Pending -> Running -> Succeeded/Failed, the Initialized, ContainersReady,
  Ready and PodScheduled conditions, ``containerStatuses`` and ``initContainerStatuses``
  (waiting, running with ``startedAt``, terminated with ``exitCode``, reason ``Completed`` or
  ``Error``, ``startedAt``/``finishedAt``), ``startTime``, ``hostIP``/``podIP`` 127.0.0.1.
  Each container's output (stdout and stderr) is streamed into the emulator's pod log as it
  comes, so ``read_namespaced_pod_log`` (and ``follow``) work. When a container's main
  process ends, what is left of its process group is killed, as a container's pid namespace
  is torn down.
- simulated failures: the pod annotation ``plait.test/oom`` (``"true"`` for every container,
  or a comma-separated list of container names, init containers too) makes those containers
  start and at once end as ``OOMKilled``, exit code 137; an image whose name contains
  ``does-not-exist`` (``bad_image_marker``) is never pulled: the container waits with
  ``ErrImagePull``, then ``ImagePullBackOff``. :meth:`Kubelet.evict` evicts a pod as node
  pressure does (processes killed, phase Failed, reason ``Evicted``, condition
  ``DisruptionTarget``); :meth:`Kubelet.lose_node` makes the node vanish (every process
  killed, no word from the kubelet again; the control plane then fails and deletes the pods
  as the pod garbage collector does, or, with ``delete_pods=False``, leaves them as they were
  with ``Ready=False``, as a NotReady node's pods look).
- deletion: with ``KubeAPI(graceful_pods=True)`` a deleted pod is only marked
  (``deletionTimestamp``); the kubelet sends SIGTERM to each container's process group, then
  SIGKILL after ``deletionGracePeriodSeconds``, reports the containers terminated and removes
  the pod with grace 0. A pod removed outright has its process groups killed at once.
- counters: :attr:`Kubelet.started` counts the container processes started per pod
  (``(namespace, name)``); :meth:`Kubelet.pids` lists the live ones.

Not simulated: other nodes, node objects, taints, tolerations, node selectors and affinity,
priorities and preemption, restart policies other than ``Never`` (containers are never
restarted), probes, sidecar (restartable) init containers, ephemeral containers, resource
limits (nothing is enforced: an over-limit process is not killed; OOM is only on request),
volume kinds other than ``emptyDir`` (``emptyDir.medium`` and ``sizeLimit`` are ignored),
pod networking (everything shares the host's network), image
pulling, security contexts (every process runs as root), lifecycle hooks.
"""

from __future__ import annotations

import base64
import codecs
import collections
import copy
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from plait.testing.kubeapi import ApiStatusError, KubeAPI, Quantity, WatchEvent, pod_usage
from plait.testing.kubeapi.watch import Follower

Obj = dict[str, Any]

__all__ = ["Kubelet", "OOM_ANNOTATION"]

OOM_ANNOTATION = "plait.test/oom"
_TERMINAL = ("Succeeded", "Failed")

# Run as ``sh -c _ENTER sh ROOT N DIR... N DIR... N HOST TARGET ro|rw... WORKDIR CMD ARG...``
# inside ``unshare -m --propagation private``: a root of the container's own (a tmpfs per
# replicated folder, holding bind mounts of that host folder's entries), the missing mount
# points made in it, the emptyDirs bound, then chroot into it with the container's PATH back.
_ENTER = r"""
set -eu
cpath=${PATH-}; cpath_set=${PATH+x}
PATH=$PLAIT_KUBELET_PATH; unset PLAIT_KUBELET_PATH
root=$1; shift
replicate() {
  d=$1
  mount -t tmpfs -o "mode=$(stat -c %a "${d:-/}")" plait-kubelet "$root$d"
  for e in "$d"/* "$d"/.[!.]* "$d"/..?*; do
    if [ ! -e "$e" ] && [ ! -L "$e" ]; then continue; fi
    t=$root$e
    if [ -L "$e" ]; then ln -s "$(readlink "$e")" "$t"
    elif [ -d "$e" ]; then mkdir "$t"; mount --rbind "$e" "$t"
    else : > "$t"; mount --bind "$e" "$t"; fi
  done
}
n=$1; shift; while [ "$n" -gt 0 ]; do replicate "$1"; shift; n=$((n - 1)); done
n=$1; shift; while [ "$n" -gt 0 ]; do mkdir -p "$root$1"; shift; n=$((n - 1)); done
n=$1; shift
while [ "$n" -gt 0 ]; do
  if [ ! -e "$root$2" ]; then mkdir -p "$root$2"; fi  # inside a volume bound before it
  mount --bind "$1" "$root$2"
  if [ "$3" = ro ]; then mount -o remount,bind,ro "$root$2"; fi
  shift 3; n=$((n - 1))
done
wd=$1; shift
ch=$PLAIT_KUBELET_CHROOT; unset PLAIT_KUBELET_CHROOT
if [ -n "$cpath_set" ]; then PATH=$cpath; export PATH; else unset PATH; fi
exec "$ch" "$root" /bin/sh -c 'cd "$1" && shift && exec "$@"' sh "$wd" "$@"
"""

_SETUP_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(kind: str, ok: bool, reason: str | None = None,
               message: str | None = None) -> Obj:
    cond: Obj = {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None,
                 "lastTransitionTime": _now()}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


class _ConfigError(Exception):
    """A reference the kubelet cannot resolve yet: CreateContainerConfigError."""


@dataclass
class _Container:
    """One container of a run: its spec, its status as the kubelet reports it, its process."""

    spec: Obj
    init: bool
    status: Obj
    process: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = None

    @property
    def name(self) -> str:
        return str(self.spec.get("name"))


@dataclass
class _Run:
    """A pod bound to this node: what runs and what is reported."""

    namespace: str
    name: str
    uid: str
    pod: Obj
    folder: Path
    usage: dict[str, Fraction]
    containers: list[_Container] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    stop: threading.Event = field(default_factory=threading.Event)
    silent: bool = False  # the node is gone: report nothing more
    outcome: tuple[str, str] | None = None  # (reason, message) of an eviction
    start_time: str = field(default_factory=_now)
    thread: threading.Thread | None = None
    done: threading.Event = field(default_factory=threading.Event)
    released: bool = False
    deleting: bool = False  # a graceful deletion is under way (see Kubelet._terminate)

    @property
    def stopping(self) -> bool:
        return self.stop.is_set()


class Kubelet:
    """One simulated node (scheduler and kubelet) for a :class:`KubeAPI`; see the module doc."""

    def __init__(self, api: KubeAPI, capacity: Mapping[str, str] | None = None,
                 node_name: str = "node-1", *, workdir: str | os.PathLike[str] | None = None,
                 image_env: Mapping[str, str] | None = None,
                 bad_image_marker: str = "does-not-exist") -> None:
        self.api = api
        self.node_name = node_name
        caps = dict(capacity if capacity is not None
                    else {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "0"})
        self.capacity = {k: Quantity.parse(v).value for k, v in caps.items()}
        self.bad_image_marker = bad_image_marker
        self.image_env = dict(image_env if image_env is not None
                              else {"PATH": os.environ.get("PATH", _SETUP_PATH),
                                    "HOME": "/root"})
        self.started: collections.Counter[tuple[str, str]] = collections.Counter()
        self._workdir_given = workdir is not None
        self._workdir = Path(workdir) if workdir is not None else None
        self._lock = threading.RLock()
        self._runs: dict[str, _Run] = {}  # by pod uid
        self._pending: dict[str, Obj] = {}  # by pod uid, in arrival order
        self._lost: bool | None = None  # None: up; True: node deleted; False: NotReady
        self._follower = Follower(api, "pods", self._handle, name=f"kubelet-{node_name}", after=self._schedule)
        self._chroot = shutil.which("chroot", path=_SETUP_PATH) or "chroot"
        self._unshare = shutil.which("unshare", path=_SETUP_PATH) or "unshare"

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> Kubelet:
        if os.geteuid() != 0:
            raise RuntimeError("the simulated kubelet mounts each pod's emptyDir volumes in a "
                               "private mount namespace (unshare -m, mount --bind), which "
                               "needs root; run the tests as root")
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="plait-kubelet-"))
        self._workdir.mkdir(parents=True, exist_ok=True)
        self._follower.start()  # the pods already there come first
        return self

    def stop(self) -> None:
        """Stop watching, kill every process this node started, remove the pods' folders."""
        self._follower.stop()
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.silent = True
            run.stop.set()
            self._kill(run, signal.SIGKILL)
        for run in runs:
            if run.thread is not None:
                run.thread.join(10)
        if self._workdir is not None and not self._workdir_given:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Kubelet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- for tests ----------------------------------------------------------------------

    def phase(self, namespace: str, name: str) -> str | None:
        """The pod's ``status.phase`` as stored, or None once it is gone."""
        pod = self.api.get("pods", name, namespace)
        return None if pod is None else (pod.get("status") or {}).get("phase")

    def pids(self, namespace: str, name: str) -> list[int]:
        """The pids of the pod's container processes still running."""
        with self._lock:
            runs = [r for r in self._runs.values() if (r.namespace, r.name) == (namespace, name)]
        return [c.process.pid for r in runs for c in r.containers
                if c.process is not None and c.process.poll() is None]

    def finished(self, namespace: str, name: str) -> bool:
        """Whether the kubelet is done with the pod: nothing of it runs or will start."""
        with self._lock:
            runs = [r for r in self._runs.values() if (r.namespace, r.name) == (namespace, name)]
        return bool(runs) and all(r.done.is_set() for r in runs)

    def used(self) -> dict[str, Fraction]:
        """What the pods bound to this node and not yet finished request, by resource."""
        with self._lock:
            total: dict[str, Fraction] = collections.defaultdict(Fraction)
            for run in self._runs.values():
                if not run.released:
                    for k, v in run.usage.items():
                        total[k] += v
            return dict(total)

    def evict(self, name: str, namespace: str = "default",
              message: str = "The node was low on resource: memory. ",
              timeout: float = 10.0) -> None:
        """Evict a running pod as node-pressure eviction does; returns once it is Failed."""
        run = self._run_of(namespace, name)
        run.outcome = ("Evicted", message)
        run.stop.set()
        self._kill(run, signal.SIGKILL)
        def evicted() -> bool:
            pod = self.api.get("pods", name, namespace)
            return pod is None or (pod.get("status") or {}).get("reason") == "Evicted"

        if not self.api.wait(evicted, timeout):
            raise TimeoutError(f"pod {namespace}/{name} was not marked Failed after eviction")

    def lose_node(self, delete_pods: bool = True) -> None:
        """The node vanishes: its processes die and its kubelet reports nothing again.

        With ``delete_pods`` the node object is gone and the pod garbage collector fails and
        deletes every pod bound to it (condition DisruptionTarget, reason DeletionByPodGC);
        otherwise the pods stay as last reported, with ``Ready=False`` (a NotReady node).
        Pods created afterwards are never scheduled.
        """
        with self._lock:
            self._lost = delete_pods
            runs = list(self._runs.values())
        for run in runs:
            run.silent = True
            run.stop.set()
            self._kill(run, signal.SIGKILL)
        for run in runs:  # the processes are dead when this returns
            if run.thread is not None:
                run.done.wait(10)
        for pod in self.api.objects("pods", field_selector=f"spec.nodeName={self.node_name}"):
            meta, status = pod["metadata"], pod.get("status") or {}
            ns, name = meta["namespace"], meta["name"]
            conds = [c for c in status.get("conditions") or [] if c.get("type") != "Ready"]
            try:
                if not delete_pods:
                    conds.append(_condition("Ready", False, "NodeNotReady",
                                            f"Node {self.node_name} is not ready"))
                    self.api.patch_status("pods", name, {"conditions": conds}, ns)
                    continue
                if status.get("phase") not in _TERMINAL:
                    conds.append(_condition("DisruptionTarget", True, "DeletionByPodGC",
                                            "PodGC: node no longer exists"))
                    self.api.patch_status("pods", name, {"phase": "Failed",
                                                         "conditions": conds}, ns)
                self.api.delete("pods", name, ns, grace_period_seconds=0)
            except ApiStatusError:
                pass  # deleted meanwhile

    # ---- the watch loop -----------------------------------------------------------------

    def _handle(self, event: WatchEvent) -> None:
        pod = event.object
        meta, spec = pod["metadata"], pod.get("spec") or {}
        uid = meta["uid"]
        phase = (pod.get("status") or {}).get("phase")
        with self._lock:
            run = self._runs.get(uid)
            if event.type == "DELETED":
                self._pending.pop(uid, None)
                if run is not None:
                    run.silent = True
                    run.stop.set()
                    self._kill(run, signal.SIGKILL)
                    self._forget(run)
                return
            node = spec.get("nodeName")
            if not node:
                if (meta.get("deletionTimestamp") or phase in _TERMINAL
                        or spec.get("schedulerName", "default-scheduler")
                        != "default-scheduler"):
                    self._pending.pop(uid, None)
                else:
                    self._pending[uid] = pod
                return
            self._pending.pop(uid, None)
            if node != self.node_name or self._lost is not None:
                return
            if run is None:
                if phase in _TERMINAL:
                    return
                run = self._admit(pod)
                self._launch(run)
            if phase in _TERMINAL:
                run.released = True
            if meta.get("deletionTimestamp") and not run.deleting:
                # An evicted pod is stopped already, yet its deletion still needs confirming.
                run.deleting = True
                run.stop.set()
                grace = int(meta.get("deletionGracePeriodSeconds") or 0)
                threading.Thread(target=self._terminate, args=(run, grace),
                                 name=f"kubelet-delete-{run.name}", daemon=True).start()

    # ---- scheduling ---------------------------------------------------------------------

    def _schedule(self) -> None:
        with self._lock:
            pending = list(self._pending.values())
        for pod in pending:
            meta = pod["metadata"]
            with self._lock:
                if meta["uid"] not in self._pending:
                    continue
                if self._lost is not None:
                    message = ("no nodes available to schedule pods" if self._lost else
                               "0/1 nodes are available: 1 node(s) had untolerated taint "
                               "{node.kubernetes.io/unreachable: }.")
                else:
                    message = self._misfit(self._requests(pod))
                if not message:
                    del self._pending[meta["uid"]]
                    run = self._admit(pod)
            try:
                if message:
                    self._unschedulable(pod, message)
                else:
                    self.api.patch("pods", meta["name"], {"spec": {"nodeName": self.node_name}},
                                   meta["namespace"])
                    self._launch(run)
            except ApiStatusError:
                if not message:  # gone before it was bound
                    with self._lock:
                        self._forget(run)

    def _requests(self, pod: Obj) -> dict[str, Fraction]:
        return {k[len("requests."):]: q.value for k, q in pod_usage(pod).items()
                if k.startswith("requests.")}

    def _misfit(self, requests: Mapping[str, Fraction]) -> str:
        used = self.used()
        short = []
        for k, want in requests.items():
            if want <= 0 or (k == "ephemeral-storage" and k not in self.capacity):
                continue
            if used.get(k, Fraction(0)) + want > self.capacity.get(k, Fraction(0)):
                short.append(f"1 Insufficient {k}")
        if not short:
            return ""
        return f"0/1 nodes are available: {', '.join(sorted(short))}."

    def _unschedulable(self, pod: Obj, message: str) -> None:
        status = pod.get("status") or {}
        conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        old = next((c for c in status.get("conditions") or []
                    if c.get("type") == "PodScheduled"), None)
        if old is not None and old.get("message") == message and old.get("status") == "False":
            return
        conds.append(_condition("PodScheduled", False, "Unschedulable", message))
        meta = pod["metadata"]
        self.api.patch_status("pods", meta["name"], {"phase": "Pending", "conditions": conds},
                              meta["namespace"])

    def _admit(self, pod: Obj) -> _Run:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        assert self._workdir is not None
        folder = self._workdir / f"{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}"
        run = _Run(meta["namespace"], meta["name"], meta["uid"], copy.deepcopy(pod), folder,
                   self._requests(pod))
        for c in spec.get("initContainers") or []:
            run.containers.append(_Container(c, True, self._waiting(c, "PodInitializing")))
        first = "PodInitializing" if spec.get("initContainers") else "ContainerCreating"
        for c in spec.get("containers") or []:
            run.containers.append(_Container(c, False, self._waiting(c, first)))
        self._runs[run.uid] = run
        return run

    def _launch(self, run: _Run) -> None:
        run.thread = threading.Thread(target=self._run_pod, args=(run,),
                                      name=f"kubelet-pod-{run.name}", daemon=True)
        run.thread.start()

    @staticmethod
    def _waiting(spec: Obj, reason: str, message: str | None = None) -> Obj:
        waiting: Obj = {"reason": reason}
        if message:
            waiting["message"] = message
        return {"name": spec.get("name"), "image": spec.get("image", ""), "imageID": "",
                "ready": False, "restartCount": 0, "started": False,
                "state": {"waiting": waiting}, "lastState": {}}

    def _run_of(self, namespace: str, name: str) -> _Run:
        with self._lock:
            for run in self._runs.values():
                if (run.namespace, run.name) == (namespace, name) and not run.released:
                    return run
        raise KeyError(f"no pod {namespace}/{name} runs on {self.node_name}")

    def _forget(self, run: _Run) -> None:
        run.released = True
        self._runs.pop(run.uid, None)

        def cleanup() -> None:
            if run.thread is not None:
                run.done.wait(30)
            shutil.rmtree(run.folder, ignore_errors=True)

        threading.Thread(target=cleanup, daemon=True).start()

    # ---- running a pod ------------------------------------------------------------------

    def _run_pod(self, run: _Run) -> None:
        try:
            self._prepare_volumes(run)
            with run.lock:
                self._publish(run)
            inits = [c for c in run.containers if c.init]
            mains = [c for c in run.containers if not c.init]
            for c in inits:
                if run.stopping or not self._start(run, c):
                    break
                self._finish(run, c)
                if c.status["state"]["terminated"]["exitCode"] != 0:
                    break
            else:
                started = []
                for c in mains:
                    if run.stopping:
                        break
                    started.append(threading.Thread(target=self._run_main, args=(run, c),
                                                    daemon=True))
                    started[-1].start()
                for t in started:
                    t.join()
        finally:
            run.done.set()
            with run.lock:
                self._publish(run)

    def _run_main(self, run: _Run, c: _Container) -> None:
        if self._start(run, c):
            self._finish(run, c)

    def _prepare_volumes(self, run: _Run) -> None:
        for vol in (run.pod.get("spec") or {}).get("volumes") or []:
            if "emptyDir" in vol:
                (run.folder / "volumes" / str(vol["name"])).mkdir(parents=True, exist_ok=True)

    def _start(self, run: _Run, c: _Container) -> bool:
        """Start the container's process (True), or leave it waiting until the pod stops."""
        image = str(c.spec.get("image") or "")
        if self.bad_image_marker and self.bad_image_marker in image:
            with run.lock:
                c.status["state"] = {"waiting": {
                    "reason": "ErrImagePull",
                    "message": f'rpc error: code = NotFound desc = failed to pull and unpack '
                               f'image "{image}": failed to resolve reference "{image}": '
                               f'{image}: not found'}}
                self._publish(run)
            self._sleep_unless_stopping(run, 0.2)
            with run.lock:
                c.status["state"] = {"waiting": {"reason": "ImagePullBackOff",
                                                 "message": f'Back-off pulling image "{image}"'}}
                self._publish(run)
            self._sleep_unless_stopping(run, None)
            return False
        while True:
            try:
                env = self._env(run, c)
                break
            except _ConfigError as err:
                with run.lock:
                    waiting = {"reason": "CreateContainerConfigError", "message": str(err)}
                    if c.status["state"].get("waiting") != waiting:
                        c.status["state"] = {"waiting": waiting}
                        self._publish(run)
                if self._sleep_unless_stopping(run, 0.1):
                    return False
        argv = [_expand(a, env) for a in (c.spec.get("command") or [])
                + (c.spec.get("args") or [])]
        problem = None
        if not c.spec.get("command"):
            problem = ("the simulated kubelet runs no images: give the container a command "
                       "(its image's entrypoint is not known)")
        elif "/" not in argv[0] and shutil.which(argv[0], path=env.get("PATH", "")) is None:
            problem = (f'failed to create containerd task: failed to create shim task: OCI '
                       f'runtime create failed: runc create failed: unable to start container '
                       f'process: exec: "{argv[0]}": executable file not found in $PATH: '
                       f'unknown')
        if problem is not None:
            with run.lock:
                now = _now()
                c.status.update(started=False, state={"terminated": {
                    "exitCode": 128, "reason": "StartError", "message": problem,
                    "startedAt": now, "finishedAt": now}})
                self._publish(run)
            return False
        with run.lock:
            if run.stopping:
                return False
            self.api.set_log(run.namespace, run.name, "", c.name)
            process = subprocess.Popen(
                self._wrap(run, c, argv), env=self._launch_env(env), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
            c.process = process
            self.started[(run.namespace, run.name)] += 1
            c.reader = threading.Thread(target=self._pump, args=(run, c, process), daemon=True)
            c.reader.start()
            c.status.update(containerID=f"plait-kubelet://{process.pid}", started=True,
                            state={"running": {"startedAt": _now()}})
            if _wants_oom(run.pod, c):
                c.status["oom"] = True
                _killpg(process.pid, signal.SIGKILL)
            self._publish(run)
        return True

    def _finish(self, run: _Run, c: _Container) -> None:
        process = c.process
        assert process is not None and c.reader is not None
        code = process.wait()
        _killpg(process.pid, signal.SIGKILL)  # the container's pid namespace goes with pid 1
        c.reader.join()
        exit_code = 128 - code if code < 0 else code
        with run.lock:
            oom = c.status.pop("oom", False)
            reason = "OOMKilled" if oom else ("Completed" if exit_code == 0 else "Error")
            started = (c.status["state"].get("running") or {}).get("startedAt") or _now()
            c.status.update(ready=False, started=False, state={"terminated": {
                "exitCode": 137 if oom else exit_code, "reason": reason,
                "startedAt": started, "finishedAt": _now(),
                "containerID": c.status.get("containerID")}})
            self._publish(run)

    def _pump(self, run: _Run, c: _Container, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        fd = process.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            text = decoder.decode(chunk, final=not chunk)
            if text and not run.silent:
                try:
                    self.api.append_log(run.namespace, run.name, text, c.name)
                except ApiStatusError:
                    pass
            if not chunk:
                break
        process.stdout.close()

    def _wrap(self, run: _Run, c: _Container, argv: list[str]) -> list[str]:
        """The command line that runs ``argv`` in the container's own mount namespace."""
        assert self._workdir is not None
        volumes = {str(v["name"]): v for v in (run.pod.get("spec") or {}).get("volumes") or []}
        binds: list[tuple[str, str, bool]] = []
        for m in c.spec.get("volumeMounts") or []:
            vol = volumes.get(str(m.get("name")))
            if vol is None or "emptyDir" not in vol:
                continue
            host = run.folder / "volumes" / str(vol["name"])
            if m.get("subPath"):
                host = host / str(m["subPath"])
                host.mkdir(parents=True, exist_ok=True)
            binds.append((str(host), os.path.normpath(str(m["mountPath"])),
                          bool(m.get("readOnly"))))
        aliases = (run.pod.get("spec") or {}).get("hostAliases") or []
        if aliases:
            binds.append((str(self._hosts_file(run, aliases)), "/etc/hosts", False))
        workdir = os.path.normpath(str(c.spec.get("workingDir") or "/"))
        targets = [t for _, t, _ in binds] + [workdir]
        replicate = {""}
        make = []
        for target in targets:
            missing = Path(target)
            while not missing.parent.exists():
                missing = missing.parent
            if not Path(target).exists():
                make.append(target)
                if str(missing.parent) != "/":
                    replicate.add(str(missing.parent))
        order = sorted(replicate, key=lambda d: (d.count("/"), d))
        root = run.folder / "roots" / c.name
        root.mkdir(parents=True, exist_ok=True)
        args = [str(root), str(len(order)), *order, str(len(make)), *make, str(len(binds))]
        for source, target, ro in sorted(binds, key=lambda b: b[1].count("/")):
            args += [source, target, "ro" if ro else "rw"]
        return [self._unshare, "--mount", "--propagation", "private", "/bin/sh", "-c", _ENTER,
                "sh", *args, workdir, *argv]

    @staticmethod
    def _hosts_file(run: _Run, aliases: list[Obj]) -> Path:
        """The pod's ``/etc/hosts``: the host's entries, then its ``hostAliases``."""
        path = run.folder / "etc-hosts"
        if not path.exists():
            try:
                base = Path("/etc/hosts").read_text()
            except OSError:
                base = "127.0.0.1\tlocalhost\n"
            lines = [base.rstrip("\n"), "", "# Entries added by HostAliases."]
            lines += ["\t".join([str(a.get("ip")), *(str(h) for h in a.get("hostnames") or [])])
                      for a in aliases]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines) + "\n")
        return path

    def _launch_env(self, env: Mapping[str, str]) -> dict[str, str]:
        out = dict(env)
        out["PLAIT_KUBELET_PATH"] = _SETUP_PATH
        out["PLAIT_KUBELET_CHROOT"] = self._chroot
        return out

    def _env(self, run: _Run, c: _Container) -> dict[str, str]:
        """The container's environment, or _ConfigError for what cannot be resolved yet."""
        pod = run.pod
        meta = pod["metadata"]
        env: dict[str, str] = dict(self.image_env)
        env["HOSTNAME"] = run.name
        try:
            host, port = self.api.url.rsplit("//", 1)[1].rsplit(":", 1)
            env.update(KUBERNETES_SERVICE_HOST=host, KUBERNETES_SERVICE_PORT=port)
        except RuntimeError:
            pass  # the emulator is not serving HTTP
        for src in c.spec.get("envFrom") or []:
            prefix = str(src.get("prefix") or "")
            for kind, key in (("secrets", "secretRef"), ("configmaps", "configMapRef")):
                ref = src.get(key)
                if ref is None:
                    continue
                data = self._data(kind, str(ref.get("name")), run.namespace,
                                  bool(ref.get("optional")))
                for k, v in (data or {}).items():
                    env[prefix + k] = v
        for item in c.spec.get("env") or []:
            name = str(item["name"])
            if "value" in item or "valueFrom" not in item:
                env[name] = _expand(str(item.get("value") or ""), env)
                continue
            source = item["valueFrom"]
            if "fieldRef" in source:
                env[name] = _field(pod, str(source["fieldRef"].get("fieldPath")))
                continue
            for kind, key, label in (("secrets", "secretKeyRef", "Secret"),
                                     ("configmaps", "configMapKeyRef", "ConfigMap")):
                ref = source.get(key)
                if ref is None:
                    continue
                optional = bool(ref.get("optional"))
                data = self._data(kind, str(ref.get("name")), run.namespace, optional)
                if data is None:
                    continue
                if ref.get("key") not in data:
                    if optional:
                        continue
                    raise _ConfigError(f"couldn't find key {ref.get('key')} in {label} "
                                       f"{meta['namespace']}/{ref.get('name')}")
                env[name] = data[str(ref["key"])]
        return env

    def _data(self, kind: str, name: str, namespace: str, optional: bool) -> dict[str, str] | None:
        obj = self.api.get(kind, name, namespace)
        if obj is None:
            if optional:
                return None
            raise _ConfigError(f'{"secret" if kind == "secrets" else "configmap"} "{name}" '
                               f"not found")
        if kind == "configmaps":
            return {str(k): str(v) for k, v in (obj.get("data") or {}).items()}
        data = {str(k): base64.b64decode(str(v)).decode("utf-8", "replace")
                for k, v in (obj.get("data") or {}).items()}
        # A real API server has folded stringData into data; the emulator keeps it as sent.
        data.update({str(k): str(v) for k, v in (obj.get("stringData") or {}).items()})
        return data

    # ---- stopping -----------------------------------------------------------------------

    def _sleep_unless_stopping(self, run: _Run, seconds: float | None) -> bool:
        """Sleep (or wait for good), waking when the pod is told to stop; True if it was."""
        return run.stop.wait(seconds)

    def _kill(self, run: _Run, sig: signal.Signals) -> None:
        with run.lock:
            processes = [c.process for c in run.containers if c.process is not None]
        for p in processes:
            if p.poll() is None:
                _killpg(p.pid, sig)

    def _terminate(self, run: _Run, grace: int) -> None:
        """A graceful deletion: SIGTERM, SIGKILL after the grace period, report, remove."""
        self._kill(run, signal.SIGTERM)
        run.done.wait(grace if grace > 0 else 0.001)
        self._kill(run, signal.SIGKILL)
        run.done.wait(10)
        if run.silent:
            return
        try:
            self.api.delete("pods", run.name, run.namespace, grace_period_seconds=0)
        except ApiStatusError:
            pass

    # ---- status -------------------------------------------------------------------------

    def _publish(self, run: _Run) -> None:
        """Report the run's whole status (the kubelet owns a bound pod's status)."""
        if run.silent:
            return
        inits = [c for c in run.containers if c.init]
        mains = [c for c in run.containers if not c.init]

        def term(c: _Container) -> Obj | None:
            t: Obj | None = c.status["state"].get("terminated")
            return t

        def public(c: _Container) -> Obj:
            s = {k: copy.deepcopy(v) for k, v in c.status.items() if k != "oom"}
            s["ready"] = "running" in s["state"] and not c.init
            return s

        init_failed = any((term(c) or {}).get("exitCode", 0) != 0 for c in inits)
        initialized = all((term(c) or {}).get("exitCode") == 0 for c in inits)
        running = [c for c in mains if "running" in c.status["state"]]
        ended = [term(c) for c in mains if term(c) is not None]
        if init_failed:
            phase = "Failed"
        elif initialized and mains and len(ended) == len(mains):
            phase = "Succeeded" if all(t and t.get("exitCode") == 0 for t in ended) else "Failed"
        elif running:
            phase = "Running"
        elif run.stopping and run.done.is_set():
            phase = "Failed"
        else:
            phase = "Pending"
        evicted = run.outcome is not None and (phase in _TERMINAL or run.done.is_set())
        if evicted:
            phase = "Failed"
        unready = [c.name for c in mains if "running" not in c.status["state"]]
        waiting_init = [c.name for c in inits if (term(c) or {}).get("exitCode") != 0]
        done = phase in _TERMINAL
        conds = [
            _condition("Initialized", initialized,
                       None if initialized else "ContainersNotInitialized",
                       None if initialized else
                       f"containers with incomplete status: [{' '.join(waiting_init)}]"),
            _condition("Ready", not unready, None if not unready else
                       ("PodCompleted" if done else "ContainersNotReady"),
                       None if not unready or done else
                       f"containers with unready status: [{' '.join(unready)}]"),
            _condition("ContainersReady", not unready, None if not unready else
                       ("PodCompleted" if done else "ContainersNotReady"),
                       None if not unready or done else
                       f"containers with unready status: [{' '.join(unready)}]"),
            _condition("PodScheduled", True),
        ]
        status: Obj = {"phase": phase, "conditions": conds, "hostIP": "127.0.0.1",
                       "hostIPs": [{"ip": "127.0.0.1"}], "podIP": "127.0.0.1",
                       "podIPs": [{"ip": "127.0.0.1"}], "startTime": run.start_time,
                       "qosClass": _qos(run.pod),
                       "containerStatuses": [public(c) for c in mains]}
        if inits:
            status["initContainerStatuses"] = [public(c) for c in inits]
        if evicted and run.outcome is not None:
            status["reason"], status["message"] = run.outcome
            conds.append(_condition("DisruptionTarget", True, "TerminationByKubelet",
                                    run.outcome[1]))
        cur = self.api.get("pods", run.name, run.namespace)
        if cur is None or cur["metadata"]["uid"] != run.uid:
            return
        old = {c.get("type"): c for c in (cur.get("status") or {}).get("conditions") or []}
        for cond in conds:  # a condition keeps its transition time while it holds
            before = old.get(cond["type"])
            if before is not None and before.get("status") == cond["status"]:
                cond["lastTransitionTime"] = before.get("lastTransitionTime")
        try:
            self.api.set_status("pods", run.name, status, run.namespace)
        except ApiStatusError:
            pass  # deleted meanwhile


def _killpg(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wants_oom(pod: Obj, c: _Container) -> bool:
    value = str(((pod.get("metadata") or {}).get("annotations") or {}).get(OOM_ANNOTATION, ""))
    if value.strip().lower() == "true":
        return not c.init
    return c.name in [v.strip() for v in value.split(",")]


_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def _expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: known names replaced, ``$$`` escapes, rest kept."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR.sub(sub, text)


def _field(pod: Obj, path: str) -> str:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    simple = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
              "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
              "spec.serviceAccountName": spec.get("serviceAccountName"),
              "status.hostIP": "127.0.0.1", "status.podIP": "127.0.0.1",
              "status.hostIPs": "127.0.0.1", "status.podIPs": "127.0.0.1"}
    if path in simple:
        return str(simple[path] or "")
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    return ""


def _qos(pod: Obj) -> str:
    containers = (pod.get("spec") or {}).get("containers") or []
    reqs = [(c.get("resources") or {}) for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in reqs):
        return "BestEffort"
    guaranteed = all(
        {"cpu", "memory"} <= set(r.get("limits") or {})
        and all(Quantity.parse(v).value == Quantity.parse((r.get("limits") or {})[k]).value
                for k, v in (r.get("requests") or {}).items() if k in ("cpu", "memory"))
        for r in reqs)
    return "Guaranteed" if guaranteed else "Burstable"
