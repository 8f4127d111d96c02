"""The Kubernetes platform's configuration: checked when built, before anything starts."""

from __future__ import annotations

import pytest
from plait.platforms.kubernetes import KubernetesConfig, KubernetesConfigError
from plait.testing.manifests import validate_manifest
from pydantic import ValidationError

S3 = "s3://bucket/plait"


def test_a_local_folder_as_blob_store_is_refused_naming_plait_blob_url(tmp_path):
    with pytest.raises(KubernetesConfigError) as err:
        KubernetesConfig.from_env({"PLAIT_BLOB_URL": str(tmp_path / "blobs")})
    message = str(err.value)
    assert "PLAIT_BLOB_URL" in message and "local folder" in message
    assert "s3://" in message and "gs://" in message


@pytest.mark.parametrize("url", ["file:///data/blobs", "relative/blobs", "memory://x"])
def test_a_blob_store_pods_cannot_reach_is_refused_in_code_too(url):
    with pytest.raises(ValidationError, match="PLAIT_BLOB_URL"):
        KubernetesConfig(blob_url=url)


@pytest.mark.parametrize("url", ["s3://bucket/p", "gs://bucket/p", "gcs://bucket", "S3://b"])
def test_s3_and_gcs_blob_stores_are_accepted(url):
    assert KubernetesConfig(blob_url=url).blob_url == url


def test_an_unset_blob_store_is_refused_naming_plait_blob_url():
    with pytest.raises(KubernetesConfigError, match="PLAIT_BLOB_URL is not set"):
        KubernetesConfig.from_env({})


def test_the_default_namespace_is_project_dash_domain():
    assert KubernetesConfig(blob_url=S3).namespace("ml", "production") == "ml-production"


def test_a_namespace_that_is_not_a_dns_label_is_an_error_naming_the_template_and_values():
    config = KubernetesConfig(blob_url=S3, namespace_template="team-{project}-{domain}")
    with pytest.raises(KubernetesConfigError) as err:
        config.namespace("ML_Team", "development")
    message = str(err.value)
    assert "'team-{project}-{domain}'" in message
    assert "project='ML_Team'" in message and "domain='development'" in message
    assert "'team-ML_Team-development'" in message


def test_a_namespace_longer_than_63_characters_is_an_error():
    with pytest.raises(KubernetesConfigError, match="DNS-1123"):
        KubernetesConfig(blob_url=S3).namespace("p" * 60, "development")


def test_a_template_with_an_unknown_field_is_refused_when_the_config_is_built():
    with pytest.raises(KubernetesConfigError, match=r"\{tenant\}-\{domain\}.*\['tenant'\]"):
        KubernetesConfig.from_env({"PLAIT_BLOB_URL": S3, "PLAIT_K8S_NAMESPACE": "{tenant}-{domain}"})


def test_a_project_setting_wins_over_the_global_one_and_tolerations_add_up():
    config = KubernetesConfig(
        blob_url=S3, node_selector={"pool": "general", "zone": "a"}, annotations={"team": "all"},
        tolerations=[{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}],
        projects={"ml": {"node_selector": {"pool": "gpu"}, "annotations": {"cost": "ml"},
                         "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                                          "effect": "NoExecute", "tolerationSeconds": 60}]}})
    assert config.node_selector_for("ml") == {"pool": "gpu", "zone": "a"}
    assert config.node_selector_for("web") == {"pool": "general", "zone": "a"}
    assert config.annotations_for("ml") == {"team": "all", "cost": "ml"}
    assert config.tolerations_for("ml") == [
        {"key": "spot", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 60}]
    assert len(config.tolerations_for("web")) == 1
    validate_manifest({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "annotations": config.annotations_for("ml")},
        "spec": {"containers": [{"name": "main", "image": config.image}],
                 "nodeSelector": config.node_selector_for("ml"),
                 "tolerations": config.tolerations_for("ml"),
                 "serviceAccountName": "plait",
                 "imagePullSecrets": [{"name": "regcred"}]}})


def test_from_env_reads_every_plait_k8s_variable():
    config = KubernetesConfig.from_env({
        "PLAIT_BLOB_URL": "gs://b/p", "PLAIT_K8S_KUBECONFIG": "/etc/kube/config",
        "PLAIT_K8S_CONTEXT": "prod", "PLAIT_K8S_NAMESPACE": "plait-{project}",
        "PLAIT_K8S_IMAGE": "registry/plait:1", "PLAIT_K8S_SERVICE_ACCOUNT": "runner",
        "PLAIT_K8S_IMAGE_PULL_SECRETS": "regcred, other",
        "PLAIT_K8S_NODE_SELECTOR": "pool=cpu,zone=b", "PLAIT_K8S_ANNOTATIONS": "team=data",
        "PLAIT_K8S_TOLERATIONS": '[{"key": "spot", "operator": "Exists"}]',
        "PLAIT_K8S_PROJECTS": '{"ml": {"node_selector": {"pool": "gpu"}}}'})
    assert (config.kubeconfig, config.context, config.in_cluster) == ("/etc/kube/config", "prod", False)
    assert config.namespace("ml", "dev") == "plait-ml"
    assert (config.image, config.service_account) == ("registry/plait:1", "runner")
    assert config.image_pull_secrets == ("regcred", "other")
    assert config.node_selector == {"pool": "cpu", "zone": "b"}
    assert config.annotations == {"team": "data"}
    assert config.tolerations_for("x") == [{"key": "spot", "operator": "Exists"}]
    assert config.node_selector_for("ml")["pool"] == "gpu"


def test_inside_a_pod_without_a_kubeconfig_the_credentials_are_in_cluster():
    config = KubernetesConfig.from_env({"PLAIT_BLOB_URL": S3, "KUBERNETES_SERVICE_HOST": "10.0.0.1"})
    assert config.in_cluster


def test_a_kubeconfig_and_in_cluster_together_are_refused():
    with pytest.raises(KubernetesConfigError, match="choose one"):
        KubernetesConfig.from_env({"PLAIT_BLOB_URL": S3, "PLAIT_K8S_KUBECONFIG": "/k",
                                   "PLAIT_K8S_IN_CLUSTER": "true"})


@pytest.mark.parametrize(("var", "value"), [
    ("PLAIT_K8S_NODE_SELECTOR", "pool"), ("PLAIT_K8S_TOLERATIONS", "[{"),
    ("PLAIT_K8S_IN_CLUSTER", "maybe")])
def test_a_malformed_variable_is_an_error_naming_it(var, value):
    with pytest.raises(KubernetesConfigError, match=var):
        KubernetesConfig.from_env({"PLAIT_BLOB_URL": S3, var: value})


def test_a_malformed_toleration_is_an_error_naming_the_field():
    with pytest.raises(KubernetesConfigError, match="tolerations.0.effect"):
        KubernetesConfig.from_env({"PLAIT_BLOB_URL": S3,
                                   "PLAIT_K8S_TOLERATIONS": '[{"key": "a", "effect": "Never"}]'})
