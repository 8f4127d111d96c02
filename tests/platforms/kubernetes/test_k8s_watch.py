"""The shared watch against the emulator: callbacks on change, re-list after 410, no requests per poll."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("kubernetes")
from plait.platforms.kubernetes.objects import POD, KubernetesObjects  # noqa: E402
from plait.platforms.kubernetes.watch import SharedWatch, Watches  # noqa: E402
from plait.testing.kubeapi import KubeAPI  # noqa: E402

NS = "default"


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
            "spec": {"containers": [{"name": "main", "image": "python:3.12"}]}}


def phase(watch: SharedWatch, name: str) -> str | None:
    obj = watch.get(name)
    return obj["status"].get("phase") if obj else None


@pytest.fixture
def kube():
    with KubeAPI() as api:
        yield api


@pytest.fixture
def objects(kube):
    return KubernetesObjects(kube.api_client())


@pytest.fixture
def watches(objects):
    w = Watches(objects)
    yield w
    w.close()


class GatedWatch(SharedWatch):
    """A watch whose reconnections wait for the test: what happens while it is away is chosen."""

    def __init__(self, *args, fail_once: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.streams = 0
        self.away = threading.Event()
        self.back = threading.Event()
        self.fail_once = fail_once

    def _stream(self) -> None:
        self.streams += 1
        if self.streams >= 2 and not self.back.is_set():
            self.away.set()
            self.back.wait(10)
            if self.fail_once:
                self.fail_once = False
                raise ConnectionResetError("connection reset by peer")
        super()._stream()


def test_a_pods_status_change_reaches_the_cache_and_calls_the_callback(kube, objects, watches):
    objects.create_or_attach(pod("p1"))
    watch = watches.watch(POD, NS)
    called = threading.Event()
    watch.on_change("p1", called.set)
    kube.patch_status("pods", "p1", {"phase": "Running"}, namespace=NS)
    assert called.wait(5)
    assert phase(watch, "p1") == "Running"


def test_a_callback_is_called_only_for_its_own_object(kube, objects, watches):
    for name in ("p1", "p2"):
        objects.create_or_attach(pod(name))
    watch = watches.watch(POD, NS)
    mine, other = threading.Event(), threading.Event()
    watch.on_change("p1", mine.set)
    watch.on_change("p2", other.set)
    kube.patch_status("pods", "p2", {"phase": "Running"}, namespace=NS)
    assert other.wait(5)
    assert not mine.is_set()


def test_a_removed_callback_is_not_called(kube, objects, watches):
    objects.create_or_attach(pod("p1"))
    watch = watches.watch(POD, NS)
    removed, kept = threading.Event(), threading.Event()
    watch.on_change("p1", removed.set)()
    watch.on_change("p1", kept.set)
    kube.patch_status("pods", "p1", {"phase": "Running"}, namespace=NS)
    assert kept.wait(5)
    assert not removed.is_set()


def test_an_object_created_after_the_watch_started_is_seen_and_its_deletion_too(kube, objects, watches):
    watch = watches.watch(POD, NS)
    changed = threading.Event()
    watch.on_change("late", changed.set)
    objects.create_or_attach(pod("late"))
    assert changed.wait(5) and watch.get("late") is not None
    changed.clear()
    objects.delete(POD, NS, "late")
    assert kube.wait(lambda: watch.get("late") is None, timeout=5)


def test_polls_make_no_api_requests(kube, objects, watches):
    objects.create_or_attach(pod("p1"))
    watch = watches.watch(POD, NS)
    assert watch.streaming.wait(5)
    before = sum(kube.requests.values())
    for _ in range(1000):
        assert watch.get("p1") is not None
    assert sum(kube.requests.values()) == before


def test_one_watch_is_shared_by_every_attempt_of_a_namespace_and_kind(kube, objects, watches):
    names = [f"p{i}" for i in range(20)]
    seen = {name: threading.Event() for name in names}
    for name in names:
        objects.create_or_attach(pod(name))
        watches.watch(POD, NS).on_change(name, seen[name].set)
    for name in names:
        kube.patch_status("pods", name, {"phase": "Succeeded"}, namespace=NS)
    assert all(event.wait(5) for event in seen.values())
    assert watches.watch(POD, NS) is watches.watch(POD, NS)
    assert kube.requests[("list", "pods")] == 1
    assert kube.requests[("watch", "pods")] == 1


def test_a_watch_resumed_after_410_gone_relists_and_misses_nothing(kube, objects):
    for name in ("done", "gone"):
        objects.create_or_attach(pod(name))
    watch = GatedWatch(objects, POD, NS, timeout_seconds=1).start()
    try:
        finished = threading.Event()
        watch.on_change("done", finished.set)
        assert watch.away.wait(5)  # the server ended the first watch; the next one waits
        kube.patch_status("pods", "done", {"phase": "Succeeded"}, namespace=NS)
        objects.delete(POD, NS, "gone")
        objects.create_or_attach(pod("new"))
        kube.compact()  # the history from the watch's resourceVersion is lost: 410 Gone
        watch.back.set()
        assert finished.wait(5)
        assert phase(watch, "done") == "Succeeded"
        assert watch.get("gone") is None and watch.get("new") is not None
        assert watch.relists == 2
    finally:
        watch.stop()


def test_a_dropped_watch_reconnects_from_its_resource_version_without_relisting(kube, objects):
    objects.create_or_attach(pod("p1"))
    watch = GatedWatch(objects, POD, NS, timeout_seconds=1, fail_once=True,
                       backoff=(0.01, 0.01)).start()
    try:
        finished = threading.Event()
        watch.on_change("p1", finished.set)
        assert watch.away.wait(5)
        kube.patch_status("pods", "p1", {"phase": "Succeeded"}, namespace=NS)
        watch.back.set()
        assert finished.wait(5)
        assert phase(watch, "p1") == "Succeeded"
        assert watch.relists == 1
    finally:
        watch.stop()


def test_an_object_observed_from_a_create_is_answered_before_the_watch_delivers_it(objects, watches):
    watch = watches.watch(POD, NS)
    created = objects.create_or_attach(pod("p1"))
    watch.observe(created)
    assert watch.get("p1")["metadata"]["uid"] == created["metadata"]["uid"]


def test_stop_ends_the_watch_thread_promptly(objects):
    watch = SharedWatch(objects, POD, NS).start()
    assert watch.streaming.wait(5)  # the thread is blocked reading its watch
    watch.stop()
    assert watch._thread is not None and not watch._thread.is_alive()
