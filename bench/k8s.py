"""Kubernetes platform (issue 9): what an attempt's pod costs the API server and the engine.

    .venv/bin/python bench/k8s.py [--sizes 1,100,1000] [--node fast|kubelet] [--workers 16]

Against the emulated cluster of the tests (``tests/k8s_cluster.py``: the moto server as S3,
the API emulator :class:`plait.testing.KubeAPI`). The engine is a real ``plait run --platform
kubernetes`` process, talking to the emulator over HTTP through the kubernetes client and to
S3 through s3fs, exactly as it would to a cluster. It measures:

1. API requests per task for maps of 1, 100 and 1,000 items (one pod per item: packing off,
   ``PLAIT_K8S_ITEMS_PER_POD=1``), by verb and resource, as the emulator counts the HTTP
   requests it serves (``KubeAPI.requests``; the node below uses the emulator in process, so
   every counted request is the engine's). Then 100 items that each sleep 2 s, and 1 item that
   sleeps 30 s: the count per task must not change with how long pods run.
2. The engine's CPU seconds (user + sys of the ``plait run`` process, from ``os.wait4`` on it)
   per 1,000 pods, and per second of waiting for a pod. The pods' processes are not the
   engine's and are not counted.
3. A 10,000-item map packed into pods (``PLAIT_K8S_ITEMS_PER_POD`` unset: the platform's
   choice from the item count and ``PLAIT_K8S_MAX_PODS``): wall time and pods created.

The node. The tests' simulated node (:class:`plait.testing.Kubelet`) runs every pod as a
fresh process (``python -m plait.runtime.remote JOB_URI`` in a private mount namespace),
about 1 s of CPU each to import plait and s3fs: 1,000 pods would take over 10 minutes on two
cores, and that time would be the node's, not the engine's. So by default this benchmark
replaces the Kubelet with :class:`FastNode`, bench-only: it follows the emulator's pods
through the same in-process subscription the Kubelet uses, binds each pod, and runs its
container's command by calling ``plait.runtime.remote.main([JOB_URI])`` in a warm worker of a
process pool (with the pod's environment: its ``env`` and ``envFrom`` Secrets), instead of
starting a process; it reports the pod's status as the Kubelet does (Pending with
ContainerCreating, Running, then Succeeded or Failed with the container's ``terminated``
exit code), sets the pod's log to the container's output, and removes a pod the engine
deletes. What it does not do: schedule against capacity (every pod is bound at once; the
pool's size bounds how many run together), volumes, init containers, simulated failures.
The engine cannot tell the difference: it sees the same API (the same watch events for each
pod, the same log read, the same delete) and the same blob store (the pod reads its job, the
code archive and its inputs from S3 and writes its result there), so its requests and its CPU
are what they are with the Kubelet, except the few ms of CPU per second the engine spends
waiting, which a slower node's longer run adds to (measured apart, in 2). To show it, the default run also runs a 20-item map and
the packed map on the Kubelet (as root; its 8 CPUs hold 16 pods of 500m at once, as the fast
node's 16 workers run 16) and prints their counts beside the fast node's. ``--node kubelet``
runs every case on the Kubelet (slow: about a second of a process per pod on two cores).
"""

from __future__ import annotations

import time

import plait

# ---- the workflow the engine runs (the pods import this module: keep its imports light) ----


@plait.task
def bump(x: int, seconds: float = 0.0) -> int:
    if seconds:
        time.sleep(seconds)
    return x + 1


@plait.workflow
def wide(xs: list[int], seconds: float = 0.0) -> list[int]:
    return plait.map(bump, over=xs, seconds=seconds)


# ---- the fast node --------------------------------------------------------------------------

NODE = "bench-node"


def _warm(env: dict[str, str]) -> None:
    """A pool worker's start: the pods' environment, and plait and s3fs imported once."""
    import os

    import fsspec.config

    os.environ.update(env)
    fsspec.config.set_conf_env(fsspec.config.conf)  # plait imported fsspec before: read FSSPEC_* again
    import plait.runtime.remote  # noqa: F401
    import s3fs  # noqa: F401


def _run_container(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """What the container's ``python -m plait.runtime.remote JOB_URI`` does, in this worker."""
    import contextlib
    import io
    import os
    import traceback

    from plait.runtime import remote

    os.environ.update(env)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = remote.main(args)
        except BaseException:
            traceback.print_exc()
            code = 1
    return code, out.getvalue()


class FastNode:
    """A bench-only node that runs pods in warm pool workers; see the module's docstring."""

    def __init__(self, kube, env: dict[str, str], workers: int) -> None:
        import multiprocessing

        from plait.testing.kubeapi.watch import Follower

        self.kube = kube
        self.pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_warm, initargs=(env,))
        self.started = 0
        self._seen: set[str] = set()
        self._deleting: set[str] = set()
        self._follower = Follower(kube, "pods", self._handle, name="fast-node")  # the Kubelet's loop

    def start(self) -> FastNode:
        self._follower.start()
        return self

    def stop(self) -> None:
        self._follower.stop()
        self.pool.terminate()
        self.pool.join()

    def _handle(self, event) -> None:
        if event.type == "DELETED":
            return
        pod = event.object
        meta = pod["metadata"]
        ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
        if meta.get("deletionTimestamp"):
            if uid not in self._deleting:  # the engine deletes a pod once it has ended: remove it
                self._deleting.add(uid)
                self.kube.delete("pods", name, ns, grace_period_seconds=0)
            return
        if uid in self._seen or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        self._seen.add(uid)
        container = pod["spec"]["containers"][0]
        argv = list(container.get("command") or []) + list(container.get("args") or [])
        if argv[1:3] != ["-m", "plait.runtime.remote"] or len(argv) != 4:
            raise SystemExit(f"the fast node runs only plait's entrypoint, not {argv}")
        env = self._env(pod, container)
        self.kube.patch("pods", name, {"spec": {"nodeName": NODE}}, ns)
        self._status(ns, name, container, "Pending", {"waiting": {"reason": "ContainerCreating"}})
        self._status(ns, name, container, "Running", {"running": {"startedAt": _now()}})
        self.started += 1
        self.pool.apply_async(_run_container, (argv[3:], env),
                              callback=lambda out: self._ended(ns, name, container, *out),
                              error_callback=lambda exc: self._ended(ns, name, container, 1, repr(exc)))

    def _ended(self, ns: str, name: str, container: dict, code: int, log: str) -> None:
        from plait.testing.kubeapi import ApiStatusError

        try:
            self.kube.set_log(ns, name, log, container["name"])
            self._status(ns, name, container, "Succeeded" if code == 0 else "Failed",
                         {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                         "finishedAt": _now()}})
        except ApiStatusError:
            pass  # deleted meanwhile

    def _status(self, ns: str, name: str, container: dict, phase: str, state: dict) -> None:
        self.kube.set_status("pods", name, {
            "phase": phase, "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "startTime": _now(),
            "containerStatuses": [{"name": container["name"], "image": container.get("image", ""),
                                   "ready": "running" in state, "restartCount": 0,
                                   "started": "running" in state, "state": state}]}, ns)

    def _env(self, pod: dict, container: dict) -> dict[str, str]:
        import base64

        env: dict[str, str] = {"HOSTNAME": pod["metadata"]["name"]}
        for source in container.get("envFrom") or []:
            ref = source["secretRef"]
            secret = self.kube.get("secrets", ref["name"], pod["metadata"]["namespace"])
            env.update({k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()})
        for item in container.get("env") or []:
            if "valueFrom" in item:
                raise SystemExit(f"the fast node resolves no valueFrom (the bench's tasks have no secrets): {item}")
            env[item["name"]] = item.get("value") or ""
        return env


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- measuring ----------------------------------------------------------------------------------


def _cluster(root, node: str, workers: int):
    """The tests' emulated cluster, with its Kubelet replaced by a :class:`FastNode` if asked."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from k8s_cluster import AWS, Cluster

    class BenchCluster(Cluster):
        def __enter__(self) -> BenchCluster:
            super().__enter__()
            if node == "fast":
                self.node.stop()  # nothing has run on it yet
                self.node = None
                try:
                    self.node = FastNode(self.kube, {**self.pod_env(), **AWS}, workers).start()
                except BaseException:
                    self.__exit__()
                    raise
            return self

    return BenchCluster(root)  # the Kubelet's 8 CPUs run 16 pods of 500m at once; the fast node 16 workers


class Run:
    """One ``plait run`` of the map: its requests, pods and the engine's CPU."""

    def __init__(self, label: str, items: int, requests, pods: int, wall: float, cpu: float) -> None:
        self.label, self.items, self.requests, self.pods, self.wall, self.cpu = label, items, requests, pods, wall, cpu


def run_map(cluster, root, label: str, items: int, seconds: float = 0.0, **env: str) -> Run:
    import collections
    import json
    import os
    import subprocess
    import sys
    import threading
    from pathlib import Path

    kube = cluster.kube
    before, pods_before = collections.Counter(kube.requests), kube.created["Pod"]
    home = root / f"home-{label.replace(' ', '-')}"
    home.mkdir(parents=True)
    log = home / "engine.log"
    argv = [sys.executable, "-m", "plait.cli", "run", f"{Path(__file__).resolve()}:wide",
            "--xs", json.dumps(list(range(items))), "--seconds", str(seconds), "--platform", "kubernetes"]
    with open(log, "wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=Path(__file__).resolve().parents[1], stdout=out,
                                   stderr=subprocess.STDOUT, env=cluster.engine_env(home, **env))
        watchdog = threading.Timer(600, process.kill)
        watchdog.start()
        _, status, usage = os.wait4(process.pid, 0)  # the engine's own rusage, not the node's
        watchdog.cancel()
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"plait run of {label} failed ({process.returncode}):\n{log.read_text()[-4000:]}")
    deadline = time.monotonic() + 60
    while cluster.pods():  # the engine finishes its deletes before it exits; the node removes them
        if time.monotonic() > deadline:
            raise SystemExit(f"pods left after {label}: {len(cluster.pods())}")
        time.sleep(0.05)
    requests = collections.Counter({k: v - before[k] for k, v in kube.requests.items() if v - before[k]})
    return Run(label, items, requests, kube.created["Pod"] - pods_before, wall, usage.ru_utime + usage.ru_stime)


FIXED = (("list", "pods"), ("watch", "pods"))
"""Per namespace and engine, not per task: the shared watch's list and watch."""


def requests_table(runs: list[Run]) -> str:
    from common import table

    keys = sorted({k for r in runs for k in r.requests}, key=lambda k: (k in FIXED, k))
    rows = []
    for r in runs:
        per_task = sum(v for k, v in r.requests.items() if k not in FIXED)
        rows.append([r.label, f"{r.pods:,}", f"{r.wall:.1f}", *(f"{r.requests.get(k, 0):,}" for k in keys),
                     f"{per_task / r.pods:.2f}", f"{sum(r.requests.values()) / r.pods:.2f}"])
    return table(["run", "pods", "wall s", *(f"{verb} {res}" for verb, res in keys),
                  "per pod (without list, watch)", "per pod (all)"], rows)


def cpu_table(runs: list[Run]) -> str:
    from common import table

    rows = [[r.label, f"{r.pods:,}", f"{r.cpu:.2f}", f"{r.cpu / r.pods * 1000:.1f}"] for r in runs]
    return table(["run", "pods", "engine CPU s", "engine CPU s per 1,000 pods"], rows)


def main() -> None:
    import argparse
    import os
    import sys
    import tempfile
    from pathlib import Path

    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1,100,1000")
    parser.add_argument("--node", choices=("fast", "kubelet"), default="fast")
    parser.add_argument("--workers", type=int, default=16, help="the fast node's pool processes")
    parser.add_argument("--packed", type=int, default=10_000,
                        help="items of the packed map (the platform chooses items per pod; 0: none)")
    parser.add_argument("--check", type=int, default=20,
                        help="items of a map run on both nodes to compare them (0: no comparison)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from common import machine, table

    root = Path(tempfile.mkdtemp(prefix="plait-bench-k8s-"))
    unpacked = {"PLAIT_K8S_ITEMS_PER_POD": "1"}
    runs: list[Run] = []
    started = time.perf_counter()
    with _cluster(root / "cluster", args.node, args.workers) as cluster:
        run_map(cluster, root, "warm-up", 4, **unpacked)
        for n in map(int, args.sizes.split(",")):
            runs.append(run_map(cluster, root, f"{n:,} item{'s' if n != 1 else ''}", n, **unpacked))
        slept = run_map(cluster, root, "100 items, 2 s each", 100, seconds=2.0, **unpacked)
        idle = run_map(cluster, root, "1 item, 30 s", 1, seconds=30.0, **unpacked)
        packed = [run_map(cluster, root, f"{args.packed:,} items, packed, {args.node} node", args.packed)
                  ] if args.packed else []
        compared = [run_map(cluster, root, f"{args.check} items, {args.node} node", args.check, **unpacked)
                    ] if args.check and args.node == "fast" else []
    if compared:
        with _cluster(root / "kubelet", "kubelet", 0) as cluster:
            run_map(cluster, root, "warm-up on the Kubelet", 1, **unpacked)
            compared.insert(0, run_map(cluster, root, f"{args.check} items, Kubelet", args.check, **unpacked))
            if packed:
                packed.append(run_map(cluster, root, f"{args.packed:,} items, packed, Kubelet", args.packed))

    print(f"Kubernetes platform against the emulator, {args.node} node, {machine()}, "
          f"{os.cpu_count()} CPUs")
    print("\n1. API requests (HTTP requests the emulator served, all of them the engine's)\n")
    print(requests_table([*runs, slept, idle]))
    print("\n2. Engine CPU (user + sys of the plait run process; the pods' are not counted)\n")
    print(cpu_table([*runs, slept, idle]))
    if len(runs) >= 2 and runs[-1].pods > runs[-2].pods:
        a, b = runs[-2], runs[-1]
        print(f"\nmarginal, {a.label} to {b.label}: {(b.cpu - a.cpu) / (b.pods - a.pods) * 1000:.1f} "
              f"engine CPU s per 1,000 pods")
    one = next((r for r in runs if r.items == 1), None)
    if one is not None:
        print(f"waiting: {(idle.cpu - one.cpu) / 30 * 1000:.0f} ms of engine CPU per second a pod runs "
              f"({idle.label} against {one.label})")
    if packed:
        print("\n3. A packed map (PLAIT_K8S_ITEMS_PER_POD unset: chosen from the map's size and "
              "PLAIT_K8S_MAX_PODS, default 100)\n")
        print(table(["run", "wall s", "pods", "items per pod", "engine CPU s", "API requests", "per item"],
                    [[r.label, f"{r.wall:.1f}", f"{r.pods:,}", f"{r.items / r.pods:g}", f"{r.cpu:.2f}",
                      f"{sum(r.requests.values()):,}", f"{sum(r.requests.values()) / r.items:.3f}"]
                     for r in packed]))
    if compared:
        print("\ncheck: the same map on the tests' Kubelet (a process per pod) and on the fast node\n")
        print(requests_table(compared))
        print()
        print(cpu_table(compared))
        if compared[0].requests != compared[1].requests:
            print("\nTHE COUNTS DIFFER: the fast node does not stand in for the Kubelet")
    print(f"\nwhole benchmark: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
