"""Create-or-attach and deletion through the real ``kubernetes`` client, against the emulator."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("kubernetes")
from plait.platforms.kubernetes import (  # noqa: E402
    KubernetesConfig,
    KubernetesForbiddenError,
    KubernetesQuotaError,
    KubernetesRetryableError,
    KubernetesUnreachableError,
    ObjectIdentity,
)
from plait.platforms.kubernetes.errors import KubernetesAPIError  # noqa: E402
from plait.platforms.kubernetes.objects import (  # noqa: E402
    POD,
    Kind,
    KubernetesObjects,
    connect,
)
from plait.testing.kubeapi import KubeAPI  # noqa: E402
from plait.testing.manifests import validate_manifest  # noqa: E402

NS = "ml-development"
PYTORCH = Kind("kubeflow.org", "v1", "pytorchjobs", "PyTorchJob")
SPARK = Kind("sparkoperator.k8s.io", "v1beta2", "sparkapplications", "SparkApplication")


def identity(execution: str = "e1", node: str = "train", number: int = 1) -> ObjectIdentity:
    return ObjectIdentity(execution, node, f"{execution}/{node}/{number}", "ml", "development",
                          "python")


def pod(who: ObjectIdentity, owner: dict | None = None) -> dict:
    meta = {"name": who.name(), "namespace": NS, "labels": who.labels(),
            "annotations": who.annotations()}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                    "name": owner["metadata"]["name"],
                                    "uid": owner["metadata"]["uid"], "controller": True,
                                    "blockOwnerDeletion": True}]
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "main", "image": "python:3.12",
                                         "resources": {"requests": {"cpu": "1"}}}]}}
    validate_manifest(manifest)
    return manifest


def pytorch_job(who: ObjectIdentity) -> dict:
    manifest = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
                "metadata": {"name": who.name(), "namespace": NS, "labels": who.labels()},
                "spec": {"pytorchReplicaSpecs": {"Master": {"replicas": 1, "template": {
                    "spec": {"containers": [{"name": "pytorch", "image": "python:3.12"}]}}}}}}
    validate_manifest(manifest)
    return manifest


@pytest.fixture
def kube():
    with KubeAPI(namespaces=("default", NS)) as api:
        yield api


@pytest.fixture
def objects(kube):
    return KubernetesObjects(kube.api_client(), kinds=[PYTORCH, SPARK])


def test_a_second_create_or_attach_returns_the_same_object_and_creates_nothing(kube, objects):
    first = objects.create_or_attach(pod(identity()))
    again = objects.create_or_attach(pod(identity()))
    assert again["metadata"]["uid"] == first["metadata"]["uid"]
    assert kube.created["Pod"] == 1
    assert kube.requests[("create", "pods")] == 2 and kube.requests[("get", "pods")] == 1


def test_create_or_attach_returns_the_created_object_as_the_server_filled_it(objects):
    created = objects.create_or_attach(pod(identity()))
    assert created["metadata"]["uid"] and created["status"]["phase"] == "Pending"
    assert created["metadata"]["labels"]["plait.dev/execution"] == "e1"


def test_create_or_attach_attaches_to_a_custom_object_too(kube, objects):
    first = objects.create_or_attach(pytorch_job(identity()))
    again = objects.create_or_attach(pytorch_job(identity()))
    assert again["metadata"]["uid"] == first["metadata"]["uid"]
    assert kube.created["PyTorchJob"] == 1


def test_an_existing_object_of_another_attempt_is_not_attached_to(kube, objects):
    mine = pod(identity())
    theirs = pod(identity(number=2))
    theirs["metadata"]["name"] = mine["metadata"]["name"]
    objects.create_or_attach(theirs)
    with pytest.raises(KubernetesAPIError, match="belongs to attempt"):
        objects.create_or_attach(mine)


def test_an_unknown_kind_is_an_error_saying_how_to_declare_it(objects):
    with pytest.raises(Exception, match="kinds="):
        objects.create_or_attach({"apiVersion": "x.io/v1", "kind": "Thing",
                                  "metadata": {"name": "t", "namespace": NS}})


def test_delete_with_foreground_propagation_removes_the_pods_the_object_owns(kube, objects):
    job = objects.create_or_attach(pytorch_job(identity()))
    for i in range(2):
        objects.create_or_attach(pod(identity(node=f"replica-{i}"), owner=job))
    assert objects.delete(PYTORCH, NS, job["metadata"]["name"]) is True
    assert kube.objects("pods", NS) == []
    assert kube.objects("pytorchjobs.kubeflow.org", NS) == []


def test_delete_asks_for_foreground_propagation(kube, objects):
    job = objects.create_or_attach(pytorch_job(identity()))
    sub = kube.subscribe("pytorchjobs.kubeflow.org")
    objects.delete(PYTORCH, NS, job["metadata"]["name"])
    marked = sub.get(timeout=5)
    assert marked is not None and "foregroundDeletion" in marked.object["metadata"]["finalizers"]


def test_deleting_what_is_already_gone_is_not_an_error(kube, objects):
    created = objects.create_or_attach(pod(identity()))
    assert objects.delete(POD, NS, created["metadata"]["name"]) is True
    assert objects.delete(POD, NS, created["metadata"]["name"]) is False
    assert objects.delete(PYTORCH, NS, "never-was") is False


def test_delete_execution_removes_every_pod_and_custom_object_of_it_and_nothing_else(kube, objects):
    for node in ("a", "b"):
        objects.create_or_attach(pod(identity("e1", node)))
    objects.create_or_attach(pytorch_job(identity("e1", "train")))
    spark = pytorch_job(identity("e1", "etl"))
    spark.update(apiVersion="sparkoperator.k8s.io/v1beta2", kind="SparkApplication",
                 spec={"type": "Python", "mode": "cluster", "sparkVersion": "3.5.0",
                       "mainApplicationFile": "local:///app/main.py",
                       "driver": {"cores": 1, "memory": "512m"},
                       "executor": {"cores": 1, "instances": 1, "memory": "512m"}})
    validate_manifest(spark)
    objects.create_or_attach(spark)
    other = objects.create_or_attach(pod(identity("e2", "a")))
    objects.delete_execution(NS, "e1")
    assert [p["metadata"]["name"] for p in kube.objects("pods", NS)] == [other["metadata"]["name"]]
    assert kube.objects("pytorchjobs.kubeflow.org", NS) == []
    assert kube.objects("sparkapplications.sparkoperator.k8s.io", NS) == []


def test_delete_execution_skips_a_custom_kind_the_cluster_does_not_serve(kube):
    objects = KubernetesObjects(kube.api_client(),
                                kinds=[Kind("ray.io", "v1", "rayjobs", "RayJob")])
    objects.create_or_attach(pod(identity()))
    objects.delete_execution(NS, "e1")
    assert kube.objects("pods", NS) == []


def test_a_quota_refusal_is_a_retryable_error_naming_the_quota(kube, objects):
    kube.create("resourcequotas", {"metadata": {"name": "small"}, "spec": {"hard": {"cpu": "1"}}},
                namespace=NS)
    objects.create_or_attach(pod(identity(node="a")))
    with pytest.raises(KubernetesQuotaError) as err:
        objects.create_or_attach(pod(identity(node="b")))
    assert isinstance(err.value, KubernetesRetryableError)
    assert "exceeded quota: small" in str(err.value) and NS in str(err.value)


def test_create_in_a_namespace_that_does_not_exist_names_it(objects):
    manifest = pod(identity())
    manifest["metadata"]["namespace"] = "nowhere"
    with pytest.raises(KubernetesAPIError, match="nowhere") as err:
        objects.create_or_attach(manifest)
    assert err.value.code == 404


class _RBACDenied(BaseHTTPRequestHandler):
    """Answers every request as an API server whose RBAC denies it (the emulator has no RBAC)."""

    def _deny(self) -> None:
        body = json.dumps({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": 'pods is forbidden: User "system:serviceaccount:plait:engine" cannot '
                       'create resource "pods" in API group "" in the namespace "ml-development"',
            "reason": "Forbidden", "details": {"kind": "pods"}, "code": 403}).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _deny

    def log_message(self, *args: object) -> None:
        pass


def test_an_rbac_refusal_names_the_verb_the_kind_and_the_namespace():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RBACDenied)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = f"http://127.0.0.1:{server.server_address[1]}"
        objects = KubernetesObjects(client.ApiClient(configuration))
        with pytest.raises(KubernetesForbiddenError) as err:
            objects.create_or_attach(pod(identity()))
    finally:
        server.shutdown()
        server.server_close()
    message = str(err.value)
    assert "to create pods in namespace 'ml-development'" in message
    assert not isinstance(err.value, KubernetesRetryableError)


def test_an_unreachable_api_server_is_an_error_naming_its_url():
    from kubernetes import client

    with KubeAPI() as gone:
        url = gone.url
    configuration = client.Configuration()
    configuration.host = url
    configuration.retries = 0
    objects = KubernetesObjects(client.ApiClient(configuration))
    with pytest.raises(KubernetesUnreachableError, match=url):
        objects.get(POD, NS, "p")


def test_connect_uses_the_kubeconfig_and_the_context_chosen(kube, tmp_path: Path):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "elsewhere",
        "clusters": [{"name": "emulator", "cluster": {"server": kube.url}},
                     {"name": "nowhere", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "emulated", "context": {"cluster": "emulator", "user": "u"}},
                     {"name": "elsewhere", "context": {"cluster": "nowhere", "user": "u"}}]}))
    config = KubernetesConfig(blob_url="s3://b/p", kubeconfig=str(kubeconfig), context="emulated")
    objects = KubernetesObjects(connect(config))
    assert objects.url == kube.url
    objects.create_or_attach(pod(identity()))
    assert kube.created["Pod"] == 1


def test_connect_with_a_missing_kubeconfig_is_a_config_error_naming_it(tmp_path: Path):
    from plait.platforms.kubernetes import KubernetesConfigError

    config = KubernetesConfig(blob_url="s3://b/p", kubeconfig=str(tmp_path / "absent"))
    with pytest.raises(KubernetesConfigError, match="absent"):
        connect(config)
