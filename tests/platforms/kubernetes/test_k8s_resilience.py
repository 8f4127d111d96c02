"""The ``kubernetes`` platform when things go wrong (issue 9): crashes, aborts, outages, quotas, nodes.

Each test breaks one thing a real cluster breaks and checks what the user and the cluster see
afterwards: an engine killed with SIGKILL while its pods run is resumed and attaches to them
(no second pod, no second start); Ctrl-C deletes every pod of the execution; a watch cut
mid-run (and one whose history was compacted meanwhile: 410 Gone) catches up on the
completion it missed; a namespace ResourceQuota keeps an attempt visibly waiting, naming the
quota, until room frees; an evicted pod and a lost node are retryable system failures that
say so, and the engine retries them.

The cluster is the emulated one of :mod:`k8s_cluster` (API server, one simulated node, S3),
shared by the module; the node-loss test replaces the node it loses, so it comes last. Engines
are either ``plait`` processes (``tests/engine_process.py``: killed, interrupted, resumed) or
a :class:`KubernetesPlatform` in this process driven through the python task type, as the
lifecycle suite drives it. Nothing waits on a fixed sleep: every wait is on something the
cluster, the store or a marker file shows, with a deadline.
"""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("kubernetes", reason="the Kubernetes platform needs the kubernetes client: pip install kubernetes")
import engine_process  # noqa: E402
import flows  # noqa: E402
from engine_process import wait_for  # noqa: E402
from k8s_cluster import AWS, NAMESPACE, Cluster  # noqa: E402
from plait.builtin.python_task import PythonTask  # noqa: E402
from plait.model.status import ErrorKind, Phase, Status  # noqa: E402
from plait.platforms.kubernetes.names import EXECUTION_LABEL, LABEL_PREFIX, label_value  # noqa: E402
from plait.platforms.kubernetes.objects import POD  # noqa: E402
from plait.platforms.kubernetes.platform import KubernetesPlatform  # noqa: E402
from plait.plugins.tasktype import AttemptContext  # noqa: E402
from plait.testing.kubelet import Kubelet  # noqa: E402
from plait.testing.lifecycle import alive, make_context, poll_until_done  # noqa: E402

ATTEMPT_LABEL = LABEL_PREFIX + "attempt"
FLOWS = "tests/flows.py"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    with Cluster(tmp_path_factory.mktemp("cluster")) as c:
        yield c


@pytest.fixture
def platform(cluster: Cluster, monkeypatch: pytest.MonkeyPatch):
    """A Kubernetes platform in this process, which is then the engine: it reads and writes S3 too."""
    import fsspec

    for name, value in AWS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": cluster.endpoint})
    where = KubernetesPlatform(cluster.config())
    yield where
    where.close()


# ---- helpers --------------------------------------------------------------------------------------


def starts(marker: Path) -> list[int]:
    """The pids of the processes that began the marked work, one line per start (flows._bump)."""
    return [int(line) for line in marker.read_text().splitlines()] if marker.exists() else []


def describe(cluster: Cluster) -> str:
    return ", ".join(f"{p['metadata']['name']} ({(p.get('status') or {}).get('phase')})"
                     for p in cluster.pods()) or "none"


def live_pods(cluster: Cluster, **labels: str) -> list[dict[str, Any]]:
    """The pods of the namespace whose labels include ``labels`` (label keys without the prefix)."""
    want = {LABEL_PREFIX + k: label_value(v) for k, v in labels.items()}
    return [p for p in cluster.pods()
            if want.items() <= (p["metadata"].get("labels") or {}).items()]


def pod_of(cluster: Cluster, attempt_id: str) -> str:
    """The name of the pod the cluster holds for ``attempt_id`` (waiting for it to appear)."""
    found = wait_for(lambda: live_pods(cluster, attempt=attempt_id), f"a pod for attempt {attempt_id}")
    assert len(found) == 1, f"attempt {attempt_id} has {len(found)} pods"
    return str(found[0]["metadata"]["name"])


class PodCreations:
    """How many pods the emulator creates while this is open, by their execution and attempt labels."""

    def __init__(self, cluster: Cluster) -> None:
        assert cluster.kube is not None
        self._sub = cluster.kube.subscribe("pods")
        self.by_attempt: collections.Counter[tuple[str | None, str | None]] = collections.Counter()
        self._thread = threading.Thread(target=self._count, daemon=True)
        self._thread.start()

    def _count(self) -> None:
        for event in self._sub:
            if event.type == "ADDED":
                labels = event.object["metadata"].get("labels") or {}
                self.by_attempt[(labels.get(EXECUTION_LABEL), labels.get(ATTEMPT_LABEL))] += 1

    def close(self) -> None:
        self._sub.close()
        self._thread.join(10)

    def __enter__(self) -> PodCreations:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def context(platform: KubernetesPlatform, cluster: Cluster, tmp_path: Path, name: str,
            inputs: dict[str, Any]) -> AttemptContext:
    """A first attempt's context on ``platform``, its attempt id unique to this test run."""
    return make_context(tmp_path, f"resilience-{uuid.uuid4().hex[:8]}/{name}/1", inputs,
                        platform=platform, blob_url=cluster.blob_url)


def status_becomes(task: PythonTask, ctx: AttemptContext, handle: Any, phase: Phase,
                   timeout: float = 30.0) -> Status:
    """Poll until the attempt reports ``phase``; fail if it ends in another first."""
    def check() -> Status | None:
        status = task.poll(ctx, handle)
        assert status.phase == phase or not status.phase.terminal, \
            f"the attempt ended {status.phase.value} ({status.message}) before it was {phase.value}"
        return status if status.phase == phase else None

    return wait_for(check, f"the attempt {ctx.attempt_id} did not report {phase.value}", timeout)


def engine(cluster: Cluster, home: Path, *args: str) -> engine_process.Run:
    """``plait ARGS`` against the cluster, in a session of its own (to kill or interrupt)."""
    return engine_process.cli(*args, env=cluster.engine_env(home))


def waiting_row(cluster: Cluster, home: Path, xid: str) -> str | None:
    """The row ``plait executions show`` prints for an attempt the platform holds back, if any."""
    shown = subprocess.run([sys.executable, "-m", "plait.cli", "executions", "show", xid, "--no-logs"],
                           capture_output=True, text=True, timeout=60,
                           env={**cluster.engine_env(home), "COLUMNS": "400"})
    assert shown.returncode == 0, shown.stdout + shown.stderr
    return next((line for line in shown.stdout.splitlines()
                 if "waiting: waiting for room in the ResourceQuota of namespace" in line), None)


def recorded_handles(store: engine_process.Store, xid: str) -> list[dict[str, Any]]:
    return [e.data for e in store.events(xid) if e.kind == "attempt" and e.data.get("handle")]


# ---- an engine killed while its pods run ---------------------------------------------------------


def test_an_engine_killed_while_pods_run_is_resumed_and_attaches_to_them_without_a_second_pod(
        cluster: Cluster, plait_home: Path, tmp_path: Path):
    marker = tmp_path / "starts"
    store = engine_process.Store()
    with PodCreations(cluster) as creations:
        first = engine(cluster, plait_home, "run", f"{FLOWS}:two_slow", "--seconds", "6", "--marker", str(marker),
                       "--platform", "kubernetes")
        try:
            xid = wait_for(store.execution, "the engine did not create its execution", run=first)
            wait_for(lambda: len(recorded_handles(store, xid)) == 2,
                     "both slow attempts' handles recorded", run=first)
            wait_for(lambda: len(starts(marker)) == 2, "both slow pods began their work", run=first)
        finally:
            first.kill()
        running = {p["metadata"]["labels"][ATTEMPT_LABEL] for p in live_pods(cluster, execution=xid)
                   if (p.get("status") or {}).get("phase") == "Running"}
        assert len(running) == 2, f"the pods did not outlive the killed engine: {describe(cluster)}"
        assert store.phase(xid) == "running", "a killed engine cannot have recorded an ending"

        resumed = engine(cluster, plait_home, "executions", "resume", xid)
        out = resumed.wait(120)
        assert resumed.returncode == 0, out
        assert '"o0": 2' in out, out
        assert len(starts(marker)) == 2, f"the slow work began again after the resume: {starts(marker)}"
        retried = [e.data for e in store.events(xid) if e.kind == "attempt" and e.data.get("attempt", 1) > 1]
        assert not retried, f"an attempt was retried instead of attached to: {retried}"
        wait_for(lambda: not live_pods(cluster, execution=xid), f"the execution's pods deleted: {describe(cluster)}")
    created = {attempt: n for (execution, attempt), n in creations.by_attempt.items() if execution == xid}
    for attempt in running:
        assert created.get(attempt) == 1, f"attempt {attempt} got {created.get(attempt)} pods"
    assert sum(created.values()) == 3, f"pods created: {created} (two slow attempts and add, one each)"
    store.close()


# ---- abort ----------------------------------------------------------------------------------------


def test_ctrl_c_aborts_the_execution_and_deletes_every_pod_it_has_running(
        cluster: Cluster, plait_home: Path, tmp_path: Path):
    marker = tmp_path / "starts"
    store = engine_process.Store()
    run = engine(cluster, plait_home, "run", f"{FLOWS}:two_slow", "--seconds", "120", "--marker", str(marker),
                 "--platform", "kubernetes")
    try:
        xid = wait_for(store.execution, "the engine did not create its execution", run=run)
        wait_for(lambda: len(starts(marker)) == 2, "both slow pods began their work", run=run)
        names = [p["metadata"]["name"] for p in live_pods(cluster, execution=xid)]
        assert len(names) == 2, describe(cluster)
        run.signal(signal.SIGINT)  # Ctrl-C in a terminal: the foreground job's process group gets it
        out = run.wait(60)
    finally:
        run.kill()
    assert run.returncode == 130, out
    assert f"execution {xid} aborted" in out
    wait_for(lambda: not live_pods(cluster, execution=xid), f"every pod of the execution deleted: {describe(cluster)}",
             timeout=20)
    assert cluster.node is not None
    assert all(not cluster.node.pids(NAMESPACE, name) for name in names)
    wait_for(lambda: not [pid for pid in starts(marker) if alive(pid)], "the tasks' processes gone", timeout=10)
    assert store.phase(xid) == "aborted"
    store.close()


# ---- the watch cut mid-run ---------------------------------------------------------------------------


@pytest.mark.parametrize("compacted", [False, True], ids=["resumed-from-its-version", "410-gone-relisted"])
def test_a_watch_cut_mid_run_is_reestablished_and_the_completion_it_missed_is_seen(
        cluster: Cluster, platform: KubernetesPlatform, tmp_path: Path, compacted: bool):
    assert cluster.kube is not None and cluster.node is not None
    marker = tmp_path / "starts"
    task = PythonTask()
    ctx = context(platform, cluster, tmp_path, "slow", {"seconds": 3.0, "marker": str(marker)})
    handle = task.submit(ctx, flows.slow.template)
    name = pod_of(cluster, ctx.attempt_id)
    watch = platform._watches.watch(POD, NAMESPACE)
    wait_for(lambda: starts(marker), "the slow task began")
    relists = watch.relists
    try:
        assert cluster.kube.drop_watches(refuse=True) >= 1, "the platform had no watch open"
        wait_for(lambda: cluster.node.phase(NAMESPACE, name) == "Succeeded", "the pod finished", timeout=30)
        assert task.poll(ctx, handle).phase == Phase.RUNNING, "the end reached the platform with its watch cut"
        if compacted:
            cluster.kube.compact()  # the history since the watch's version is gone: 410 on resume
    finally:
        cluster.kube.accept_watches()
    status = poll_until_done(task, ctx, handle, 30)
    assert status.phase == Phase.SUCCEEDED, status.message
    assert status.outputs == {"o0": 1}
    assert watch.relists == relists + (1 if compacted else 0)
    assert len(starts(marker)) == 1
    wait_for(lambda: cluster.kube.get("pods", name, NAMESPACE) is None, "the finished pod deleted")
    task.cleanup(ctx, handle)


# ---- a ResourceQuota that refuses the pod --------------------------------------------------------------


def test_a_pod_the_namespace_quota_refuses_waits_for_resources_naming_the_quota_then_runs(
        cluster: Cluster, platform: KubernetesPlatform, tmp_path: Path):
    assert cluster.kube is not None
    wait_for(lambda: not cluster.pods(), f"no pod left by earlier tests: {describe(cluster)}")
    cluster.kube.create("resourcequotas", {"metadata": {"name": "one-pod-at-a-time"},
                                           "spec": {"hard": {"pods": "1"}}}, NAMESPACE)
    try:
        task = PythonTask()
        first_marker, second_marker = tmp_path / "first", tmp_path / "second"
        first = context(platform, cluster, tmp_path, "first", {"seconds": 3.0, "marker": str(first_marker)})
        second = context(platform, cluster, tmp_path, "second", {"seconds": 0.1, "marker": str(second_marker)})
        first_handle = task.submit(first, flows.slow.template)
        wait_for(lambda: starts(first_marker), "the first task began")
        second_handle = task.submit(second, flows.slow.template)
        waiting = status_becomes(task, second, second_handle, Phase.WAITING_FOR_RESOURCES)
        assert "one-pod-at-a-time" in waiting.message and "ResourceQuota" in waiting.message, waiting.message
        assert not live_pods(cluster, attempt=second.attempt_id) and not starts(second_marker)
        done = poll_until_done(task, first, first_handle, 30)
        assert done.phase == Phase.SUCCEEDED, done.message
        done = poll_until_done(task, second, second_handle, 60)
        assert done.phase == Phase.SUCCEEDED, done.message
        assert len(starts(first_marker)) == len(starts(second_marker)) == 1
    finally:
        cluster.kube.delete("resourcequotas", "one-pod-at-a-time", NAMESPACE)


def test_through_the_cli_the_wait_for_the_quota_is_recorded_and_shown_then_the_run_succeeds(
        cluster: Cluster, plait_home: Path, tmp_path: Path):
    assert cluster.kube is not None
    wait_for(lambda: not cluster.pods(), f"no pod left by earlier tests: {describe(cluster)}")
    cluster.kube.create("resourcequotas", {"metadata": {"name": "one-pod-at-a-time"},
                                           "spec": {"hard": {"pods": "1"}}}, NAMESPACE)
    marker = tmp_path / "starts"
    store = engine_process.Store()
    try:
        run = engine(cluster, plait_home, "run", f"{FLOWS}:two_slow", "--seconds", "6", "--marker", str(marker),
                     "--platform", "kubernetes")
        try:
            xid = wait_for(store.execution, "the engine created its execution", run=run)
            wait_for(lambda: waiting_row(cluster, plait_home, xid),
                     "executions show said the attempt waits for the ResourceQuota", run=run)
            out = run.wait(120)
        finally:
            run.kill()
    finally:
        cluster.kube.delete("resourcequotas", "one-pod-at-a-time", NAMESPACE)
    assert run.returncode == 0, out
    waited = [e.data for e in store.events(xid) if e.kind == "attempt" and e.phase == "waiting_for_resources"]
    assert waited and "one-pod-at-a-time" in waited[0]["waiting"]["reason"], waited
    phases = [e.phase for e in store.events(xid) if e.kind == "attempt" and e.entity == waited[0]["node"] + "/1"]
    assert phases.index("waiting_for_resources") < len(phases) - 1 and phases[-1] == "succeeded", phases
    store.close()


# ---- eviction and node loss ----------------------------------------------------------------------------


def test_an_evicted_pod_is_a_retryable_system_failure_that_says_so(
        cluster: Cluster, platform: KubernetesPlatform, tmp_path: Path):
    assert cluster.node is not None
    marker = tmp_path / "starts"
    task = PythonTask()
    ctx = context(platform, cluster, tmp_path, "slow", {"seconds": 60.0, "marker": str(marker)})
    handle = task.submit(ctx, flows.slow.template)
    wait_for(lambda: starts(marker), "the slow task began")
    cluster.node.evict(pod_of(cluster, ctx.attempt_id), NAMESPACE)
    status = poll_until_done(task, ctx, handle, 30)
    assert status.phase == Phase.FAILED
    assert status.retryable and status.error_kind == ErrorKind.SYSTEM, status
    assert "evicted" in status.message and "low on resource: memory" in status.message, status.message
    wait_for(lambda: not live_pods(cluster, attempt=ctx.attempt_id), "the evicted pod deleted")
    task.cleanup(ctx, handle)


def test_through_the_cli_an_evicted_attempt_is_retried_and_the_execution_succeeds(
        cluster: Cluster, plait_home: Path, tmp_path: Path):
    assert cluster.node is not None
    marker = tmp_path / "starts"
    store = engine_process.Store()
    run = engine(cluster, plait_home, "run", f"{FLOWS}:two_slow", "--seconds", "5", "--marker", str(marker),
                 "--platform", "kubernetes")
    try:
        xid = wait_for(store.execution, "the engine did not create its execution", run=run)
        # both began, so the one evicted is work that must start again, not a pod still starting
        wait_for(lambda: len(starts(marker)) == 2, "both slow pods began their work", run=run)
        victim = live_pods(cluster, execution=xid)[0]["metadata"]["name"]
        cluster.node.evict(victim, NAMESPACE)
        out = run.wait(120)
    finally:
        run.kill()
    assert run.returncode == 0, out
    assert len(starts(marker)) == 3, "the evicted attempt was not retried (or something else ran twice)"
    failed = [e.data for e in store.events(xid) if e.kind == "attempt" and e.phase == "failed"]
    assert len(failed) == 1 and "the pod was evicted from its node" in failed[0].get("message", ""), failed
    shown = engine_process.cli("executions", "show", xid, env=cluster.engine_env(plait_home)).wait(60)
    assert "the pod was evicted from its node" in shown, shown
    assert store.phase(xid) == "succeeded"
    store.close()


def test_a_lost_node_is_a_retryable_system_failure_and_the_retry_runs_on_a_fresh_node(
        cluster: Cluster, platform: KubernetesPlatform, tmp_path: Path):
    """Last in the module: the node it loses is replaced by a fresh one for what follows."""
    assert cluster.kube is not None and cluster.node is not None
    marker = tmp_path / "starts"
    task = PythonTask()
    ctx = context(platform, cluster, tmp_path, "slow", {"seconds": 60.0, "marker": str(marker)})
    handle = task.submit(ctx, flows.slow.template)
    wait_for(lambda: starts(marker), "the slow task began")
    lost = cluster.node
    lost.lose_node()
    status = poll_until_done(task, ctx, handle, 30)
    assert status.phase == Phase.FAILED
    assert status.retryable and status.error_kind == ErrorKind.SYSTEM, status
    assert "node went away" in status.message, status.message
    assert not alive(starts(marker)[0]), "the lost node's process survived it"
    task.cleanup(ctx, handle)

    lost.stop()  # a lost node's scheduler would answer every new pod "no nodes available"
    venv_bin = str(Path(sys.executable).parent)
    cluster.node = Kubelet(cluster.kube, capacity=cluster.capacity, node_name="node-2",
                           workdir=cluster.root / "node-2",
                           image_env={"PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin", "HOME": "/root"}).start()
    retry = make_context(tmp_path, ctx.attempt_id.rsplit("/", 1)[0] + "/2", {**ctx.inputs, "seconds": 0.5},
                         platform=platform, blob_url=cluster.blob_url)
    retry.attempt = 2
    handle = task.submit(retry, flows.slow.template)
    done = poll_until_done(task, retry, handle, 60)
    assert done.phase == Phase.SUCCEEDED, done.message
    assert len(starts(marker)) == 2
    task.cleanup(retry, handle)
