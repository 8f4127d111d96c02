"""Manifests are checked against the real schemas before any emulated cluster sees them.

Built-in kinds against kubernetes-validate's strict schemas for the pinned Kubernetes version;
SparkApplication and PyTorchJob against the operators' CRDs in tests/data/crds (copied from
../shared/crds, so the tests run on a clean clone). Each refusal names the path it refuses.
"""

from __future__ import annotations

import copy
import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from plait.testing.manifests import (
    KUBERNETES_VERSION,
    ManifestError,
    load_crds,
    validate_manifest,
    validate_manifests,
)

CRDS = Path(__file__).resolve().parents[1] / "data" / "crds"
SHARED_CRDS = Path(__file__).resolve().parents[2].parent / "shared" / "crds"


def check(manifest: dict[str, Any], **options: Any) -> None:
    validate_manifest(manifest, crds=[CRDS], **options)


def refusal(manifest: dict[str, Any], **options: Any) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        check(manifest, **options)
    return caught.value


def paths(error: ManifestError) -> list[str]:
    return [violation.path for violation in error.violations]


def minimal_pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "a-1"},
        "spec": {"containers": [{"name": "main", "image": "python:3.11-slim"}]},
    }


def realistic_pod() -> dict[str, Any]:
    """What the container task's default layout builds: inputs fetched by an init container."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "plait-3f2a9c-n0-a1",
            "namespace": "flowers-development",
            "labels": {"plait.dev/execution": "3f2a9c", "plait.dev/node": "n0",
                       "plait.dev/attempt": "1", "plait.dev/task-type": "container"},
            "annotations": {"plait.dev/attempt-id": "3f2a9c/n0/1"},
        },
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": "plait-task",
            "imagePullSecrets": [{"name": "registry"}],
            "nodeSelector": {"pool": "gpu"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "volumes": [{"name": "inputs", "emptyDir": {}},
                        {"name": "outputs", "emptyDir": {"sizeLimit": "10Gi"}}],
            "initContainers": [{
                "name": "fetch-inputs",
                "image": "ghcr.io/plait/plait:0.1.0",
                "command": ["python", "-m", "plait.runtime.fetch", "/plait/inputs"],
                "volumeMounts": [{"name": "inputs", "mountPath": "/plait/inputs"}],
            }],
            "containers": [{
                "name": "main",
                "image": "pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime",
                "command": ["python", "train.py", "--data", "/plait/inputs/data"],
                "env": [
                    {"name": "EPOCHS", "value": "3"},
                    {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {
                        "name": "plait-secrets", "key": "api-token"}}},
                ],
                "resources": {"requests": {"cpu": "2", "memory": "8Gi"},
                              "limits": {"cpu": 2, "memory": "8Gi", "nvidia.com/gpu": 1}},
                "volumeMounts": [{"name": "inputs", "mountPath": "/plait/inputs", "readOnly": True},
                                 {"name": "outputs", "mountPath": "/plait/outputs"}],
            }],
        },
    }


def spark_application() -> dict[str, Any]:
    return {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": {"name": "plait-3f2a9c-n1-a1", "namespace": "flowers-development",
                     "labels": {"plait.dev/execution": "3f2a9c"}},
        "spec": {
            "type": "Python",
            "mode": "cluster",
            "sparkVersion": "3.5.1",
            "image": "ghcr.io/plait/plait-spark:0.1.0",
            "imagePullPolicy": "IfNotPresent",
            "mainApplicationFile": "local:///opt/plait/entrypoint.py",
            "arguments": ["--attempt", "3f2a9c/n1/1"],
            "sparkConf": {"spark.sql.shuffle.partitions": "64",
                          "spark.kubernetes.submission.waitAppCompletion": "false"},
            "hadoopConf": {"fs.s3a.endpoint": "http://minio:9000"},
            "restartPolicy": {"type": "Never"},
            "driver": {"cores": 1, "coreLimit": "1200m", "memory": "2g",
                       "serviceAccount": "plait-spark", "labels": {"plait.dev/role": "driver"},
                       "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {
                           "name": "plait-secrets", "key": "token"}}}]},
            "executor": {"cores": 2, "instances": 3, "memory": "4g"},
            "dynamicAllocation": {"enabled": True, "initialExecutors": 1, "minExecutors": 1,
                                  "maxExecutors": 6},
        },
    }


def pytorch_job() -> dict[str, Any]:
    def replica(count: int) -> dict[str, Any]:
        return {
            "replicas": count,
            "restartPolicy": "OnFailure",
            "template": {
                "metadata": {"labels": {"plait.dev/execution": "3f2a9c"}},
                "spec": {"containers": [{
                    "name": "pytorch",
                    "image": "ghcr.io/plait/plait-pytorch:0.1.0",
                    "command": ["python", "-m", "plait.runtime.attempt"],
                    "ports": [{"name": "pytorchjob-port", "containerPort": 23456}],
                    "resources": {"limits": {"nvidia.com/gpu": 2, "memory": "16Gi"}},
                }]},
            },
        }

    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": "plait-3f2a9c-n2-a1", "namespace": "flowers-development"},
        "spec": {
            "nprocPerNode": "2",
            "elasticPolicy": {"rdzvBackend": "c10d", "minReplicas": 1, "maxReplicas": 4,
                              "maxRestarts": 3},
            "runPolicy": {"cleanPodPolicy": "None", "backoffLimit": 3},
            "pytorchReplicaSpecs": {"Master": replica(1), "Worker": replica(3)},
        },
    }


# --- valid manifests pass -------------------------------------------------------------------


def test_a_minimal_pod_passes() -> None:
    check(minimal_pod())


def test_a_pod_with_init_container_volumes_secret_env_gpus_and_tolerations_passes() -> None:
    check(realistic_pod())


def test_a_python_spark_application_passes() -> None:
    check(spark_application())


def test_a_pytorch_job_with_master_workers_and_elastic_policy_passes() -> None:
    check(pytorch_job())


def test_a_spark_driver_template_may_hold_any_pod_fields() -> None:
    # driver.template is x-kubernetes-preserve-unknown-fields: the operator reads it as a Pod.
    app = spark_application()
    app["spec"]["driver"]["template"] = {"spec": {"priorityClassName": "high",
                                                  "anything": {"goes": [1, 2]}}}
    check(app)


def test_a_quantity_may_be_an_integer_or_a_string_in_a_crd() -> None:
    job = pytorch_job()
    job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0][
        "resources"] = {"limits": {"cpu": 4, "memory": "16Gi"}, "requests": {"cpu": "3500m"}}
    check(job)


def test_several_manifests_pass_together() -> None:
    validate_manifests([minimal_pod(), spark_application(), pytorch_job()], crds=[CRDS])


# --- refusals name the path -----------------------------------------------------------------


def test_a_misspelled_pod_spec_field_is_refused() -> None:
    pod = minimal_pod()
    pod["spec"]["containres"] = pod["spec"].pop("containers")
    error = refusal(pod)
    assert "spec.containres" in paths(error)
    assert "unknown field" in str(error)
    assert "Pod 'a-1'" in str(error)


def test_a_misspelled_field_deep_in_a_pod_is_refused() -> None:
    pod = realistic_pod()
    pod["spec"]["containers"][0]["env"][1]["valueFrom"]["secretKeyRef"]["optinal"] = True
    assert paths(refusal(pod)) == ["spec.containers[0].env[1].valueFrom.secretKeyRef.optinal"]


def test_replicas_as_a_string_is_refused_in_a_deployment() -> None:
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "plait-engine"},
        "spec": {"replicas": "2", "selector": {"matchLabels": {"app": "plait"}},
                 "template": {"metadata": {"labels": {"app": "plait"}},
                              "spec": {"containers": [{"name": "engine", "image": "plait"}]}}},
    }
    error = refusal(deployment)
    assert paths(error) == ["spec.replicas"]
    assert "not of type 'integer'" in str(error)


def test_replicas_as_a_string_is_refused_in_a_pytorch_job() -> None:
    job = pytorch_job()
    job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] = "3"
    error = refusal(job)
    assert paths(error) == ["spec.pytorchReplicaSpecs.Worker.replicas"]
    assert "not of type 'integer'" in str(error)


def test_an_unknown_field_in_a_spark_application_spec_is_refused() -> None:
    app = spark_application()
    app["spec"]["executor"]["gpus"] = 1
    error = refusal(app)
    assert paths(error) == ["spec.executor.gpus"]
    assert "SparkApplication 'plait-3f2a9c-n1-a1'" in str(error)


def test_an_unknown_field_in_a_pytorch_pod_template_is_refused() -> None:
    job = pytorch_job()
    job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["metadata"]["lables"] = {}
    assert paths(refusal(job)) == ["spec.pytorchReplicaSpecs.Master.template.metadata.lables"]


def test_a_misspelled_metadata_field_of_a_custom_object_is_refused() -> None:
    app = spark_application()
    app["metadata"]["annotatons"] = {"a": "b"}
    assert paths(refusal(app)) == ["metadata.annotatons"]


def test_a_missing_required_field_is_refused_in_a_pod() -> None:
    pod = minimal_pod()
    del pod["spec"]["containers"][0]["name"]
    error = refusal(pod)
    assert paths(error) == ["spec.containers[0].name"]
    assert "required" in str(error)


def test_a_missing_required_field_is_refused_in_a_spark_application() -> None:
    app = spark_application()
    del app["spec"]["mainApplicationFile"]
    assert paths(refusal(app)) == ["spec.mainApplicationFile"]


def test_a_value_outside_a_crd_enum_is_refused() -> None:
    app = spark_application()
    app["spec"]["type"] = "python"
    error = refusal(app)
    assert paths(error) == ["spec.type"]
    assert "'Python'" in str(error)


def test_a_malformed_quantity_is_refused() -> None:
    pod = realistic_pod()
    pod["spec"]["containers"][0]["resources"]["limits"]["memory"] = "8 GiB"
    error = refusal(pod)
    assert paths(error) == ["spec.containers[0].resources.limits.memory"]
    assert "not a Kubernetes quantity" in str(error)


def test_duplicate_keys_of_a_crd_list_map_are_refused() -> None:
    job = pytorch_job()
    containers = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"]
    containers.append(copy.deepcopy(containers[0]))
    error = refusal(job)
    assert paths(error) == ["spec.pytorchReplicaSpecs.Worker.template.spec.containers[1]"]
    assert "duplicate" in str(error)


def test_a_list_map_key_left_out_counts_as_its_default() -> None:
    # ports are keyed by (containerPort, protocol), and protocol defaults to TCP.
    job = pytorch_job()
    container = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    container["ports"].append({"name": "again", "containerPort": 23456, "protocol": "TCP"})
    assert paths(refusal(job)) == ["spec.pytorchReplicaSpecs.Master.template.spec.containers[0].ports[1]"]


def test_a_nullable_crd_field_accepts_null() -> None:
    app = spark_application()
    app["status"] = {"driverInfo": {}, "terminationTime": None}
    check(app)


def test_a_required_crd_field_with_a_default_may_be_left_out(tmp_path: Path) -> None:
    # The API server fills in defaults before it validates (none of the operators' CRDs has one).
    (tmp_path / "widgets.yaml").write_text(WIDGET_CRD)
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
              "spec": {"size": 3}}
    validate_manifest(widget, crds=[tmp_path / "widgets.yaml"])
    del widget["spec"]["size"]
    with pytest.raises(ManifestError) as caught:
        validate_manifest(widget, crds=[tmp_path / "widgets.yaml"])
    assert paths(caught.value) == ["spec.size"]


WIDGET_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size, colour]
            properties:
              size: {type: integer}
              colour: {type: string, default: blue}
"""


def test_every_violation_is_reported_at_once() -> None:
    pod = minimal_pod()
    pod["spec"]["restartPolicy"] = 0
    pod["spec"]["containers"][0]["imag"] = "x"
    pod["spec"]["containers"].append({"image": "y"})
    assert sorted(paths(refusal(pod))) == [
        "spec.containers[0].imag", "spec.containers[1].name", "spec.restartPolicy"]


def test_an_unknown_kind_is_refused() -> None:
    error = refusal({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
    assert "no schema for kind 'Widget'" in str(error)
    assert "SparkApplication (sparkoperator.k8s.io/v1beta2)" in str(error)


def test_a_custom_kind_is_refused_when_no_crds_are_given() -> None:
    with pytest.raises(ManifestError, match="no CRDs were given"):
        validate_manifest(spark_application(), crds=[])


def test_a_version_the_crd_does_not_serve_is_refused() -> None:
    app = spark_application()
    app["apiVersion"] = "sparkoperator.k8s.io/v1beta1"
    with pytest.raises(ManifestError, match="serves only sparkoperator.k8s.io/v1beta2"):
        check(app)


def test_a_field_newer_than_the_pinned_kubernetes_version_is_refused() -> None:
    pod = minimal_pod()
    pod["spec"]["resources"] = {"limits": {"cpu": "1"}}  # pod-level resources: Kubernetes 1.32
    assert KUBERNETES_VERSION == "1.30"
    assert paths(refusal(pod)) == ["spec.resources"]
    check(pod, kubernetes_version="1.32")


def test_a_name_that_is_not_a_dns_subdomain_is_refused() -> None:
    pod = minimal_pod()
    pod["metadata"]["name"] = "Train_Model"
    assert paths(refusal(pod)) == ["metadata.name"]


def test_a_missing_name_is_refused() -> None:
    job = pytorch_job()
    del job["metadata"]["name"]
    assert paths(refusal(job)) == ["metadata.name"]


def test_a_label_value_over_63_characters_is_refused() -> None:
    app = spark_application()
    app["metadata"]["labels"]["plait.dev/node"] = "n" * 64
    error = refusal(app)
    assert paths(error) == ['metadata.labels["plait.dev/node"]']
    assert "label value" in str(error)


def test_a_value_json_cannot_carry_is_refused() -> None:
    pod = minimal_pod()
    pod["spec"]["containers"][0]["args"] = [object()]
    with pytest.raises(ManifestError, match="not JSON-serializable"):
        check(pod)


def test_several_manifests_report_each_invalid_one() -> None:
    bad_pod, bad_job = minimal_pod(), pytorch_job()
    bad_pod["spec"]["containres"] = []
    bad_job["spec"]["nprocPerNode"] = 2
    with pytest.raises(AssertionError) as caught:
        validate_manifests([bad_pod, spark_application(), bad_job], crds=[CRDS])
    assert "spec.containres" in str(caught.value)
    assert "spec.nprocPerNode" in str(caught.value)


# --- the CRDs and the imports -----------------------------------------------------------------


def test_the_repository_carries_the_operator_crds() -> None:
    kinds = {(c.group, c.version, c.kind) for c in load_crds([CRDS])}
    assert kinds == {("sparkoperator.k8s.io", "v1beta2", "SparkApplication"),
                     ("kubeflow.org", "v1", "PyTorchJob"),
                     ("trainer.kubeflow.org", "v1alpha1", "TrainJob")}
    if SHARED_CRDS.is_dir():  # a clean clone has no ../shared: nothing to compare with there
        shared = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in SHARED_CRDS.glob("*.yaml")}
        copied = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in CRDS.glob("*.yaml")}
        assert copied == shared


def test_importing_plait_testing_loads_no_schema_library() -> None:
    code = ("import sys, plait, plait.testing, plait.testing.manifests; "
            "print(sorted({'kubernetes_validate', 'jsonschema', 'yaml'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_missing_schema_library_says_what_to_install() -> None:
    code = ("import sys; sys.modules['kubernetes_validate'] = None\n"
            "from plait.testing.manifests import validate_manifest\n"
            "try:\n"
            "    validate_manifest({'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'a'}}, crds=[])\n"
            "except ImportError as error:\n"
            "    print(error)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install kubernetes-validate" in out.stdout
