"""The Kubernetes API emulator (plait.testing.kubeapi), driven by the real ``kubernetes`` client.

Every behaviour the coming Kubernetes platform relies on is checked here through CoreV1Api,
CustomObjectsApi and kubernetes.watch.Watch, so that what the platform's tests see is what a
real API server would answer (status codes, Status bodies, watch events).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

try:
    import kubernetes  # noqa: F401  (a clear message below if it is missing)
except ImportError:  # pragma: no cover - the test extra installs it
    pytest.fail('these tests need the kubernetes client: pip install "kubernetes<36" (make installs it)',
                pytrace=False)
from kubernetes.client import CoreV1Api, CustomObjectsApi, V1DeleteOptions  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402
from kubernetes.watch import Watch  # noqa: E402
from plait.testing.kubeapi import KubeAPI  # noqa: E402

NS = "default"
SPARK = ("sparkoperator.k8s.io", "v1beta2", NS, "sparkapplications")


@pytest.fixture
def kube():
    with KubeAPI(history=50) as api:
        yield api


@pytest.fixture
def core(kube):
    return CoreV1Api(kube.api_client())


@pytest.fixture
def custom(kube):
    return CustomObjectsApi(kube.api_client())


def pod(name, labels=None, requests=None, owner=None, containers=("main",)):
    meta = {"name": name, "labels": labels or {}}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                    "name": owner["metadata"]["name"],
                                    "uid": owner["metadata"]["uid"],
                                    "blockOwnerDeletion": True, "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": c, "image": "python:3.11",
                                     "resources": {"requests": requests or {}}}
                                    for c in containers]}}


def spark_app(name):
    return {"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "SparkApplication",
            "metadata": {"name": name, "labels": {"plait.dev/execution": "e1"}},
            "spec": {"type": "Python", "mode": "cluster", "sparkVersion": "3.5.0",
                     "mainApplicationFile": "local:///app/main.py"}}


def status_of(exc: ApiException) -> dict:
    return json.loads(exc.body)


# ---- create, get -----------------------------------------------------------------------------


def test_create_answers_201_and_fills_uid_timestamp_resource_version_and_generation(core):
    created, code, _ = core.create_namespaced_pod_with_http_info(NS, pod("p1"))
    assert code == 201
    assert created.metadata.uid and created.metadata.creation_timestamp is not None
    assert int(created.metadata.resource_version) > 0
    assert created.metadata.generation == 1
    assert created.status.phase == "Pending"
    assert core.read_namespaced_pod("p1", NS).metadata.uid == created.metadata.uid


def test_second_create_of_the_same_name_is_409_already_exists_with_the_status_body(core, kube):
    core.create_namespaced_pod(NS, pod("p1"))
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(NS, pod("p1"))
    assert err.value.status == 409
    assert status_of(err.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'pods "p1" already exists', "reason": "AlreadyExists",
        "details": {"name": "p1", "kind": "pods"}, "code": 409}
    assert kube.created["Pod"] == 1


def test_get_of_a_missing_object_is_404_not_found(core, custom):
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("nope", NS)
    assert err.value.status == 404
    assert status_of(err.value)["reason"] == "NotFound"
    assert status_of(err.value)["message"] == 'pods "nope" not found'
    with pytest.raises(ApiException) as err:
        custom.get_namespaced_custom_object(*SPARK, "nope")
    assert status_of(err.value)["message"] == 'sparkapplications.sparkoperator.k8s.io "nope" not found'
    assert status_of(err.value)["details"]["group"] == "sparkoperator.k8s.io"


def test_create_in_a_namespace_that_does_not_exist_is_404(core):
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod("elsewhere", pod("p1"))
    assert err.value.status == 404
    assert status_of(err.value)["message"] == 'namespaces "elsewhere" not found'
    core.create_namespace({"metadata": {"name": "elsewhere"}})
    core.create_namespaced_pod("elsewhere", pod("p1"))


def test_generate_name_gets_a_unique_suffix(core):
    a = core.create_namespaced_pod(NS, {**pod(""), "metadata": {"generateName": "job-"}})
    b = core.create_namespaced_pod(NS, {**pod(""), "metadata": {"generateName": "job-"}})
    assert a.metadata.name.startswith("job-") and a.metadata.name != b.metadata.name


# ---- list with selectors --------------------------------------------------------------------


def test_list_filters_by_label_selector_equality_inequality_and_sets(core):
    core.create_namespaced_pod(NS, pod("a", {"app": "x", "tier": "web"}))
    core.create_namespaced_pod(NS, pod("b", {"app": "y", "tier": "db"}))
    core.create_namespaced_pod(NS, pod("c", {"app": "z"}))

    def names(selector):
        return [p.metadata.name for p in core.list_namespaced_pod(NS, label_selector=selector).items]

    assert names("app=x") == ["a"]
    assert names("app==y") == ["b"]
    assert names("app!=x") == ["b", "c"]
    assert names("app in (x, z)") == ["a", "c"]
    assert names("app notin (x,z)") == ["b"]
    assert names("tier") == ["a", "b"]
    assert names("!tier") == ["c"]
    assert names("app in (x,y),tier!=db") == ["a"]


def test_list_filters_by_field_selector_on_metadata_name_and_reports_a_resource_version(core):
    core.create_namespaced_pod(NS, pod("a"))
    core.create_namespaced_pod(NS, pod("b"))
    listing = core.list_namespaced_pod(NS, field_selector="metadata.name=b")
    assert [p.metadata.name for p in listing.items] == ["b"]
    assert int(listing.metadata.resource_version) >= 2
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod(NS, field_selector="spec.nonsense=1")
    assert err.value.status == 400


def test_custom_objects_are_created_listed_and_selected_by_label(custom, kube):
    created = custom.create_namespaced_custom_object(*SPARK, spark_app("s1"))
    assert created["metadata"]["uid"] and created["kind"] == "SparkApplication"
    custom.create_namespaced_custom_object(
        "kubeflow.org", "v1", NS, "pytorchjobs",
        {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "t1"},
         "spec": {"pytorchReplicaSpecs": {}}})
    listing = custom.list_namespaced_custom_object(*SPARK, label_selector="plait.dev/execution=e1")
    assert [o["metadata"]["name"] for o in listing["items"]] == ["s1"]
    assert kube.created == {"Namespace": 1, "SparkApplication": 1, "PyTorchJob": 1}


# ---- watch ----------------------------------------------------------------------------------


def test_watch_from_a_resource_version_streams_added_modified_deleted_in_order(core, kube):
    rv = core.list_namespaced_pod(NS).metadata.resource_version
    core.create_namespaced_pod(NS, pod("w1"))
    kube.patch_status("pods", "w1", {"phase": "Running"}, namespace=NS)
    core.delete_namespaced_pod("w1", NS)
    seen = [(e["type"], e["object"].metadata.name, e["object"].status.phase)
            for e in Watch().stream(core.list_namespaced_pod, NS, resource_version=rv,
                                    timeout_seconds=1)]
    assert seen == [("ADDED", "w1", "Pending"), ("MODIFIED", "w1", "Running"),
                    ("DELETED", "w1", "Running")]


def test_watch_receives_changes_made_while_it_waits(core, kube):
    rv = core.list_namespaced_pod(NS).metadata.resource_version
    watch = Watch()
    seen = []

    def follow():
        for event in watch.stream(core.list_namespaced_pod, NS, resource_version=rv,
                                  label_selector="app=x", timeout_seconds=10):
            seen.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                watch.stop()

    thread = threading.Thread(target=follow)
    thread.start()
    assert kube.wait(lambda: kube.requests[("watch", "pods")] == 1)
    core.create_namespaced_pod(NS, pod("other"))
    core.create_namespaced_pod(NS, pod("w1", {"app": "x"}))
    core.patch_namespaced_pod("w1", NS, {"metadata": {"labels": {"more": "1"}}})
    core.delete_namespaced_pod("w1", NS)
    thread.join(10)
    assert seen == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]


def test_watch_from_a_compacted_resource_version_gets_410_and_the_client_raises(core, kube):
    old_rv = core.list_namespaced_pod(NS).metadata.resource_version
    core.create_namespaced_pod(NS, pod("p1"))
    kube.compact()
    with pytest.raises(ApiException) as err:
        for _ in Watch().stream(core.list_namespaced_pod, NS, resource_version=old_rv,
                                _request_timeout=5):  # a broken server fails, not hangs
            pass
    assert err.value.status == 410
    assert "Expired: too old resource version" in err.value.reason
    # a fresh list gives a version the watch accepts
    rv = core.list_namespaced_pod(NS).metadata.resource_version
    core.delete_namespaced_pod("p1", NS)
    events = list(Watch().stream(core.list_namespaced_pod, NS, resource_version=rv,
                                 timeout_seconds=1))
    assert [e["type"] for e in events] == ["DELETED"]


def test_dropped_watches_break_mid_stream_and_refused_ones_get_503_until_accepted(core, kube):
    rv = core.list_namespaced_pod(NS).metadata.resource_version
    seen, ended = [], []

    def follow():
        try:
            for event in Watch().stream(core.list_namespaced_pod, NS, resource_version=rv,
                                        timeout_seconds=30, _request_timeout=40):
                seen.append(event["object"].metadata.name)
            ended.append("cleanly")  # a server's timeoutSeconds ends a watch this way
        except Exception as exc:
            ended.append(type(exc).__name__)

    thread = threading.Thread(target=follow)
    thread.start()
    assert kube.wait(lambda: kube.requests[("watch", "pods")] == 1)
    core.create_namespaced_pod(NS, pod("before"))
    assert kube.wait(lambda: seen == ["before"], timeout=5)
    assert kube.drop_watches(refuse=True) == 1
    thread.join(5)
    assert not thread.is_alive() and ended and ended != ["cleanly"], ended
    core.create_namespaced_pod(NS, pod("while-away"))  # other verbs still work
    with pytest.raises(ApiException) as err:
        list(Watch().stream(core.list_namespaced_pod, NS, resource_version=rv, _request_timeout=5))
    assert err.value.status == 503
    kube.accept_watches()
    again = [e["object"].metadata.name for e in Watch().stream(
        core.list_namespaced_pod, NS, resource_version=rv, timeout_seconds=1)]
    assert again == ["before", "while-away"]
    assert kube.wait(lambda: kube.open_watches() == 0)  # the server closes a watch just after its client read the end
    assert kube.drop_watches() == 0  # none open: nothing to cut, and no wait


def test_watch_history_is_bounded_so_a_watch_far_behind_gets_410(core, kube):
    old_rv = core.list_namespaced_pod(NS).metadata.resource_version
    for i in range(60):  # the fixture keeps 50 events
        kube.create("configmaps", {"metadata": {"name": f"c{i}"}}, namespace=NS)
    with pytest.raises(ApiException) as err:
        list(Watch().stream(core.list_namespaced_pod, NS, resource_version=old_rv,
                            _request_timeout=5))
    assert err.value.status == 410


def test_watch_without_a_resource_version_starts_with_what_exists(core):
    core.create_namespaced_pod(NS, pod("a"))
    core.create_namespaced_pod(NS, pod("b"))
    events = list(Watch().stream(core.list_namespaced_pod, NS, timeout_seconds=1))
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "a"),
                                                                      ("ADDED", "b")]


# ---- patch, replace, status -------------------------------------------------------------------


def test_strategic_merge_patch_merges_containers_by_name_and_merge_patch_replaces_lists(core, custom):
    core.create_namespaced_pod(NS, pod("p1", containers=("main", "side")))
    patched = core.patch_namespaced_pod(
        "p1", NS, {"spec": {"containers": [{"name": "side", "image": "busybox"}]}})
    assert [(c.name, c.image) for c in patched.spec.containers] == [("main", "python:3.11"),
                                                                   ("side", "busybox")]
    assert patched.metadata.generation == 2
    custom.create_namespaced_custom_object(*SPARK, spark_app("s1"))
    out = custom.patch_namespaced_custom_object(*SPARK, "s1", {"spec": {"arguments": ["a"]}})
    assert out["spec"]["arguments"] == ["a"] and out["spec"]["type"] == "Python"


def test_replace_with_a_stale_resource_version_is_409_conflict(core):
    created = core.create_namespaced_pod(NS, pod("p1"))
    core.patch_namespaced_pod("p1", NS, {"metadata": {"labels": {"a": "1"}}})
    created.metadata.labels = {"b": "2"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_pod("p1", NS, created)
    assert err.value.status == 409 and status_of(err.value)["reason"] == "Conflict"


def test_status_subresource_changes_status_only_and_the_main_resource_leaves_status(core, custom, kube):
    core.create_namespaced_pod(NS, pod("p1"))
    sent = pod("p1")
    sent["spec"]["containers"][0]["image"] = "changed"
    sent["status"] = {"phase": "Succeeded"}
    after = core.replace_namespaced_pod_status("p1", NS, sent)
    assert after.status.phase == "Succeeded"
    assert after.spec.containers[0].image == "python:3.11"
    assert after.metadata.generation == 1
    again = core.patch_namespaced_pod("p1", NS, {"status": {"phase": "Failed"}})
    assert again.status.phase == "Succeeded"
    custom.create_namespaced_custom_object(*SPARK, spark_app("s1"))
    out = custom.patch_namespaced_custom_object_status(
        *SPARK, "s1", {"status": {"applicationState": {"state": "RUNNING"}},
                       "spec": {"type": "Scala"}})
    assert out["status"]["applicationState"]["state"] == "RUNNING"
    assert out["spec"]["type"] == "Python"
    assert kube.requests[("patch", "sparkapplications.sparkoperator.k8s.io/status")] == 1


def test_strategic_merge_patch_on_a_custom_resource_is_415(custom):
    custom.create_namespaced_custom_object(*SPARK, spark_app("s1"))
    with pytest.raises(ApiException) as err:
        custom.api_client.call_api(
            "/apis/sparkoperator.k8s.io/v1beta2/namespaces/default/sparkapplications/s1",
            "PATCH", body={"spec": {}}, response_type="object",
            header_params={"Content-Type": "application/strategic-merge-patch+json"})
    assert err.value.status == 415


# ---- delete ---------------------------------------------------------------------------------


def test_delete_answers_with_the_pod_and_with_a_status_for_a_custom_object(core, custom):
    core.create_namespaced_pod(NS, pod("p1"))
    gone = core.delete_namespaced_pod("p1", NS)
    assert gone.metadata.name == "p1"
    custom.create_namespaced_custom_object(*SPARK, spark_app("s1"))
    status = custom.delete_namespaced_custom_object(*SPARK, "s1")
    assert status["kind"] == "Status" and status["status"] == "Success"
    with pytest.raises(ApiException) as err:
        core.delete_namespaced_pod("p1", NS)
    assert err.value.status == 404


def test_foreground_deletion_removes_the_owned_pods_before_the_owner(core, custom, kube):
    owner = custom.create_namespaced_custom_object(*SPARK, spark_app("s1"))
    core.create_namespaced_pod(NS, pod("driver", owner=owner))
    core.create_namespaced_pod(NS, pod("exec-1", owner=owner))
    core.create_namespaced_pod(NS, pod("unrelated"))
    rv = core.list_namespaced_pod(NS).metadata.resource_version
    sub = kube.subscribe()
    reply = custom.delete_namespaced_custom_object(
        *SPARK, "s1", body=V1DeleteOptions(propagation_policy="Foreground"))
    assert reply["metadata"]["deletionTimestamp"]
    assert reply["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert [p.metadata.name for p in core.list_namespaced_pod(NS).items] == ["unrelated"]
    order = [(e.type, e.object["metadata"]["name"]) for e in iter(lambda: sub.get(0), None)]
    assert order == [("MODIFIED", "s1"), ("DELETED", "driver"), ("DELETED", "exec-1"),
                     ("MODIFIED", "s1"), ("DELETED", "s1")]
    deleted = [e["object"].metadata.name for e in Watch().stream(
        core.list_namespaced_pod, NS, resource_version=rv, timeout_seconds=1)]
    assert deleted == ["driver", "exec-1"]


def test_background_deletion_removes_owned_pods_and_orphan_keeps_them(core, custom):
    owner = custom.create_namespaced_custom_object(*SPARK, spark_app("s1"))
    core.create_namespaced_pod(NS, pod("driver", owner=owner))
    custom.delete_namespaced_custom_object(*SPARK, "s1", propagation_policy="Background")
    assert core.list_namespaced_pod(NS).items == []
    owner = custom.create_namespaced_custom_object(*SPARK, spark_app("s2"))
    core.create_namespaced_pod(NS, pod("driver", owner=owner))
    custom.delete_namespaced_custom_object(*SPARK, "s2", propagation_policy="Orphan")
    kept = core.read_namespaced_pod("driver", NS)
    assert kept.metadata.owner_references is None


def test_delete_collection_by_label_selector_deletes_only_the_matching_pods(core):
    core.create_namespaced_pod(NS, pod("a", {"plait.dev/execution": "e1"}))
    core.create_namespaced_pod(NS, pod("b", {"plait.dev/execution": "e1"}))
    core.create_namespaced_pod(NS, pod("c", {"plait.dev/execution": "e2"}))
    core.delete_collection_namespaced_pod(NS, label_selector="plait.dev/execution=e1")
    assert [p.metadata.name for p in core.list_namespaced_pod(NS).items] == ["c"]


def test_a_finalizer_holds_an_object_until_an_update_clears_it(core, custom):
    app = spark_app("s1")
    app["metadata"]["finalizers"] = ["example.com/hold"]
    custom.create_namespaced_custom_object(*SPARK, app)
    held = custom.delete_namespaced_custom_object(*SPARK, "s1")
    assert held["metadata"]["deletionTimestamp"]
    assert custom.get_namespaced_custom_object(*SPARK, "s1")["metadata"]["deletionTimestamp"]
    custom.patch_namespaced_custom_object(*SPARK, "s1", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as err:
        custom.get_namespaced_custom_object(*SPARK, "s1")
    assert err.value.status == 404


# ---- quota ----------------------------------------------------------------------------------


def test_a_pod_over_the_namespace_quota_is_refused_403_with_the_exceeded_quota_message(core, kube):
    core.create_namespaced_resource_quota(NS, {"metadata": {"name": "compute"}, "spec": {"hard": {
        "requests.cpu": "2", "requests.memory": "4Gi", "requests.nvidia.com/gpu": "1",
        "pods": "3"}}})
    core.create_namespaced_pod(NS, pod("p1", requests={"cpu": "1500m", "memory": "1Gi",
                                                       "nvidia.com/gpu": "1"}))
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(NS, pod("p2", requests={"cpu": "1", "memory": "1Gi"}))
    assert err.value.status == 403
    body = status_of(err.value)
    assert body["reason"] == "Forbidden"
    assert body["message"] == ('pods "p2" is forbidden: exceeded quota: compute, requested: '
                               "requests.cpu=1, used: requests.cpu=1500m, limited: requests.cpu=2")
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(NS, pod("p3", requests={"nvidia.com/gpu": "1"}))
    assert status_of(err.value)["message"].endswith(
        "requested: requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=1, "
        "limited: requests.nvidia.com/gpu=1")
    quota = core.read_namespaced_resource_quota("compute", NS)
    assert quota.status.used == {"requests.cpu": "1500m", "requests.memory": "1Gi",
                                 "requests.nvidia.com/gpu": "1", "pods": "1"}
    assert kube.created["Pod"] == 1
    kube.patch_status("pods", "p1", {"phase": "Succeeded"}, namespace=NS)  # finished: freed
    core.create_namespaced_pod(NS, pod("p3", requests={"nvidia.com/gpu": "1"}))


def test_the_pods_count_in_a_quota_refuses_one_pod_too_many(core):
    core.create_namespaced_resource_quota(NS, {"metadata": {"name": "count"},
                                               "spec": {"hard": {"pods": "1"}}})
    core.create_namespaced_pod(NS, pod("p1"))
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(NS, pod("p2"))
    assert status_of(err.value)["message"] == ('pods "p2" is forbidden: exceeded quota: count, '
                                               "requested: pods=1, used: pods=1, limited: pods=1")


# ---- logs -----------------------------------------------------------------------------------


def test_pod_logs_return_the_text_the_kubelet_set(core, kube):
    core.create_namespaced_pod(NS, pod("p1"))
    kube.set_log(NS, "p1", "one\ntwo\nthree\n")
    assert core.read_namespaced_pod_log("p1", NS) == "one\ntwo\nthree\n"
    assert core.read_namespaced_pod_log("p1", NS, tail_lines=1) == "three\n"
    assert kube.requests[("get", "pods/log")] == 2


def test_pod_logs_need_a_container_name_when_the_pod_has_several(core, kube):
    core.create_namespaced_pod(NS, pod("p1", containers=("main", "side")))
    kube.set_log(NS, "p1", "from side\n", container="side")
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("p1", NS)
    assert err.value.status == 400
    assert "a container name must be specified for pod p1" in status_of(err.value)["message"]
    assert core.read_namespaced_pod_log("p1", NS, container="side") == "from side\n"


def test_pod_logs_of_a_waiting_container_are_400(core, kube):
    core.create_namespaced_pod(NS, pod("p1"))
    kube.patch_status("pods", "p1", {"containerStatuses": [
        {"name": "main", "ready": False, "restartCount": 0, "image": "x", "imageID": "",
         "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}, namespace=NS)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("p1", NS)
    assert status_of(err.value)["message"] == (
        'container "main" in pod "p1" is waiting to start: ImagePullBackOff')


def test_followed_logs_stream_appended_text_until_the_pod_finishes(core, kube):
    core.create_namespaced_pod(NS, pod("p1"))
    kube.set_log(NS, "p1", "start\n")
    lines: list[str] = []
    got = threading.Condition()

    def follow():
        for line in Watch().stream(core.read_namespaced_pod_log, "p1", NS, _request_timeout=10):
            with got:
                lines.append(line)
                got.notify_all()

    def wait_for(n):
        with got:
            return got.wait_for(lambda: len(lines) >= n, timeout=5)

    thread = threading.Thread(target=follow)
    thread.start()
    assert wait_for(1)
    kube.append_log(NS, "p1", "middle\n")  # written after the stream began
    assert wait_for(2)
    assert thread.is_alive()
    kube.append_log(NS, "p1", "end\n")
    kube.patch_status("pods", "p1", {"phase": "Succeeded"}, namespace=NS)
    thread.join(10)
    assert not thread.is_alive()
    assert lines == ["start", "middle", "end"]


# ---- in-process hooks -----------------------------------------------------------------------


def test_a_replaying_subscription_gets_the_existing_objects_first_then_the_changes(core, kube):
    core.create_namespaced_pod(NS, pod("before"))
    sub = kube.subscribe("pods", replay=True)
    core.create_namespaced_pod(NS, pod("after"))
    seen = [sub.get(timeout=5) for _ in range(2)]
    assert [(e.type, e.object["metadata"]["name"]) for e in seen if e] == [("ADDED", "before"), ("ADDED", "after")]
    assert sub.get(timeout=0) is None
    sub.close()


def test_a_subscription_sees_http_changes_without_http(core, kube):
    sub = kube.subscribe("pods")
    core.create_namespaced_pod(NS, pod("p1"))
    core.create_namespaced_config_map(NS, {"metadata": {"name": "c"}})
    event = sub.get(timeout=5)
    assert event is not None and (event.type, event.object["metadata"]["name"]) == ("ADDED", "p1")
    assert sub.get(timeout=0) is None
    sub.close()
    assert kube.get("pods", "p1", NS)["status"] == {"phase": "Pending"}
    assert [o["metadata"]["name"] for o in kube.objects("pods", NS, label_selector="")] == ["p1"]


def test_a_crd_manifest_installs_its_kind_with_its_status_subresource(custom, kube):
    import yaml

    crds = Path(__file__).resolve().parents[1] / "data" / "crds"  # copies of ../shared/crds, in the repo
    [rt] = kube.install_crd(yaml.safe_load((crds / "trainer.kubeflow.org_trainjobs.yaml").read_text()))
    assert (rt.key, rt.kind, rt.status_subresource) == ("trainjobs.trainer.kubeflow.org", "TrainJob", True)
    job = ("trainer.kubeflow.org", "v1alpha1", NS, "trainjobs")
    custom.create_namespaced_custom_object(*job, {"apiVersion": "trainer.kubeflow.org/v1alpha1",
                                                  "kind": "TrainJob", "metadata": {"name": "t"},
                                                  "spec": {}, "status": {"conditions": []}})
    assert "status" not in custom.get_namespaced_custom_object(*job, "t")  # dropped on create
    out = custom.patch_namespaced_custom_object_status(*job, "t", {"status": {"conditions": []}})
    assert out["status"] == {"conditions": []}


def test_graceful_pod_deletion_waits_for_the_kubelet_to_confirm(kube):
    kube.graceful_pods = True
    core = CoreV1Api(kube.api_client())
    body = pod("p1")
    body["spec"]["nodeName"] = "node-1"
    core.create_namespaced_pod(NS, body)
    marked = core.delete_namespaced_pod("p1", NS)
    assert marked.metadata.deletion_timestamp is not None
    assert marked.metadata.deletion_grace_period_seconds == 30
    assert core.read_namespaced_pod("p1", NS).metadata.deletion_timestamp is not None
    kube.delete("pods", "p1", NS, grace_period_seconds=0)  # the kubelet, once processes are gone
    assert kube.get("pods", "p1", NS) is None
