"""deploy/: what a cluster admin applies is valid, least privilege, free of credentials, and runs
a real plait command.

Every document of every YAML file under ``deploy/`` is checked against the real schemas
(``validate_manifest``); the tenant file must be exactly what ``plait.platforms.kubernetes.rbac``
builds, so the file a cluster admin applies and the permissions the code documents cannot drift.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from plait.cli.main import cli
from plait.platforms.kubernetes import KubernetesConfig, rbac
from plait.testing.manifests import validate_manifest

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
EXAMPLE_TENANT = ("pricing", "production")

# What the engine does in a tenant namespace (core/plait/platforms/kubernetes/objects.py and
# watch.py), written out here rather than read from rbac.py, so widening the code fails a test.
OBJECT_VERBS = {"create", "get", "list", "watch", "delete", "deletecollection"}
EXPECTED_GRANTS = (
    {("", "pods", verb) for verb in OBJECT_VERBS}
    | {("", "pods/log", "get")}
    | {("sparkoperator.k8s.io", "sparkapplications", verb) for verb in OBJECT_VERBS}
    | {("kubeflow.org", "pytorchjobs", verb) for verb in OBJECT_VERBS}
)
NEVER_GRANTED = {"secrets", "configmaps", "services", "namespaces", "serviceaccounts", "roles",
                 "rolebindings", "pods/exec", "pods/attach", "pods/portforward"}


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def all_documents() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in yaml_files():
        for i, doc in enumerate(load(path)):
            name = (doc.get("metadata") or {}).get("name")
            out.append((f"{path.relative_to(DEPLOY)}[{i}] {doc.get('kind')} {name}", doc))
    return out


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in all_documents() if doc.get("kind") == kind]


def engine_deployment() -> dict[str, Any]:
    [deployment] = [d for d in load(DEPLOY / "engine.yaml") if d["kind"] == "Deployment"]
    return deployment


def engine_container() -> dict[str, Any]:
    [container] = engine_deployment()["spec"]["template"]["spec"]["containers"]
    return container


def literal_env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


# --- the files are there and valid ------------------------------------------------------------


def test_deploy_holds_the_engine_and_a_tenant():
    kinds = {(path.name, doc["kind"]) for path in yaml_files() for doc in load(path)}
    assert {("engine.yaml", "Namespace"), ("engine.yaml", "ServiceAccount"), ("engine.yaml", "Deployment"),
            ("tenant.yaml", "Namespace"), ("tenant.yaml", "Role"), ("tenant.yaml", "RoleBinding"),
            ("tenant.yaml", "ServiceAccount")} <= kinds
    assert (DEPLOY / "README.md").is_file()


@pytest.mark.parametrize("doc", [doc for _, doc in all_documents()], ids=[i for i, _ in all_documents()])
def test_every_document_is_valid_against_the_real_schemas(doc):
    validate_manifest(doc)


# --- the tenant's RBAC: exactly what the code says, and no more -------------------------------


def test_the_tenant_file_is_what_rbac_builds():
    namespace = KubernetesConfig(blob_url="s3://b/p").namespace(*EXAMPLE_TENANT)
    assert load(DEPLOY / "tenant.yaml") == rbac.tenant_manifests(namespace)


def test_the_tenant_file_renders_another_tenant_by_replacing_its_namespace():
    # deploy/tenant.yaml and deploy/README.md tell admins to render other tenants with sed.
    text = (DEPLOY / "tenant.yaml").read_text().replace("pricing-production", "forecast-staging")
    assert [d for d in yaml.safe_load_all(text) if d] == rbac.tenant_manifests("forecast-staging")


def test_the_role_grants_exactly_what_the_engine_does():
    for role in of_kind("Role"):
        granted = {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
                   for resource in rule["resources"] for verb in rule["verbs"]}
        assert granted == EXPECTED_GRANTS, role["metadata"]
    rules = [p.rule() for p in rbac.ENGINE_PERMISSIONS]
    assert {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]
            for v in rule["verbs"]} == EXPECTED_GRANTS


def test_the_role_grants_nothing_on_secrets_configmaps_services_or_namespaces():
    roles = of_kind("Role")
    assert roles
    for role in roles:
        for rule in role["rules"]:
            assert not NEVER_GRANTED & set(rule.get("resources", [])), rule
            assert "*" not in rule.get("resources", []) + rule.get("verbs", []) + rule.get("apiGroups", []), rule
            assert not rule.get("nonResourceURLs"), rule


def test_nothing_is_granted_at_cluster_scope():
    kinds = {doc["kind"] for _, doc in all_documents()}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in of_kind("Role")}
    for binding in of_kind("RoleBinding"):
        # A RoleBinding to a ClusterRole (admin, edit) would grant far more than the Role does.
        assert binding["roleRef"]["kind"] == "Role", binding["metadata"]
        assert (binding["metadata"]["namespace"], binding["roleRef"]["name"]) in roles


def test_the_binding_names_the_service_account_the_engine_runs_as():
    deployment = engine_deployment()
    engine_namespace = deployment["metadata"]["namespace"]
    engine_account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    accounts = {(a["metadata"]["namespace"], a["metadata"]["name"]) for a in load(DEPLOY / "engine.yaml")
                if a["kind"] == "ServiceAccount"}
    assert (engine_namespace, engine_account) in accounts
    for binding in of_kind("RoleBinding"):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": engine_account,
                                        "namespace": engine_namespace}]


def test_task_pods_run_as_an_account_with_no_rights_and_no_token():
    task_account = literal_env(engine_container())["PLAIT_K8S_SERVICE_ACCOUNT"]
    [account] = [a for a in load(DEPLOY / "tenant.yaml")
                 if a["kind"] == "ServiceAccount" and a["metadata"]["name"] == task_account]
    assert account["automountServiceAccountToken"] is False
    for binding in of_kind("RoleBinding"):
        assert task_account not in {s["name"] for s in binding["subjects"]}


# --- the engine's Deployment -----------------------------------------------------------------


def test_the_engine_runs_unprivileged_on_a_read_only_root():
    pod = engine_deployment()["spec"]["template"]["spec"]
    container = engine_container()
    security = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"].get("runAsUser", 1) != 0 and security.get("runAsUser", 1) != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"] and not security["capabilities"].get("add")
    assert not security.get("privileged") and not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    assert all(set(volume) == {"name", "emptyDir"} for volume in pod["volumes"])
    assert set(container["resources"]["requests"]) == set(container["resources"]["limits"]) == {"cpu", "memory"}


def test_the_engine_writes_only_to_mounted_empty_dirs():
    pod = engine_deployment()["spec"]["template"]["spec"]
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    mounts = {m["mountPath"]: m["name"] for m in engine_container()["volumeMounts"]}
    home = literal_env(engine_container())["PLAIT_HOME"]
    assert mounts.get(home) in empty_dirs
    assert mounts.get("/tmp") in empty_dirs  # Python's tempfile, on a read-only root


def test_the_engine_reads_its_database_url_from_a_secret():
    [db_url] = [e for e in engine_container()["env"] if e["name"] == "PLAIT_DB_URL"]
    assert "value" not in db_url
    assert db_url["valueFrom"]["secretKeyRef"] == {"name": "plait-db", "key": "url"}


def test_the_engine_environment_is_a_valid_in_cluster_configuration():
    env = literal_env(engine_container())
    config = KubernetesConfig.from_env(env)
    assert config.in_cluster is True and config.kubeconfig is None
    assert config.blob_url.startswith("s3://")
    assert config.service_account == rbac.TASK_SERVICE_ACCOUNT
    # The Secrets deploy/README.md tells admins to create in each tenant namespace.
    assert config.secrets_secret == "plait-secrets" and config.env_from_secrets == ("plait-blob",)
    tenant_namespace = [d for d in load(DEPLOY / "tenant.yaml") if d["kind"] == "Namespace"][0]["metadata"]["name"]
    assert config.namespace(*EXAMPLE_TENANT) == tenant_namespace


def _plait_executable() -> str:
    beside = Path(sys.executable).parent / "plait"
    found = str(beside) if beside.exists() else shutil.which("plait")
    assert found, f"no plait executable beside {sys.executable} or on PATH"
    return found


def test_the_engine_command_is_a_real_plait_command_with_real_options():
    command = engine_container()["command"]
    assert command[0] == "plait"
    first_option = next((i for i, a in enumerate(command) if a.startswith("-")), len(command))
    subcommand, arguments = command[1:first_option], command[first_option:]
    assert subcommand == ["engine"]
    done = subprocess.run([_plait_executable(), *subcommand, "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    help_options = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", done.stdout))
    options = {arg.split("=", 1)[0] for arg in arguments if arg.startswith("--")}
    assert options and options <= help_options, (options - help_options, done.stdout)
    # The values parse too (click checks types when it builds the context, without running it).
    cli.commands["engine"].make_context("engine", list(arguments))


# --- no credentials anywhere -----------------------------------------------------------------


_SHELL_REFERENCE = re.compile(r"^\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*|\(.*\))$")
_URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^\s/@:]+:([^\s/@]+)@", re.IGNORECASE)
_SECRET_ASSIGNMENT = re.compile(
    r"([A-Za-z0-9_.-]*(?:password|passwd|secret[_-]?(?:access[_-]?)?key|client[_-]?secret|token|access[_-]?key"
    r"|api[_-]?key)[A-Za-z0-9_.-]*)"
    r"[\"']?[ \t]*[:=][ \t]*([^\s,;)]+)", re.IGNORECASE)
_ENV_LITERAL = re.compile(r"name:[ \t]*[\"']?([A-Za-z0-9_]+)[\"']?[ \t]*(?:#[^\n]*)?\n[ \t]*value:[ \t]*(\S+)")
_KEY_MATERIAL = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b|-----BEGIN [A-Z ]*PRIVATE KEY-----")
# Variables that hold a credential's value (PLAIT_K8S_SECRETS only names a Secret).
_SECRET_ENV_NAME = re.compile(r"PASSWORD|PASSWD|SECRET_ACCESS_KEY|ACCESS_KEY_ID|SESSION_TOKEN|_TOKEN$|API_KEY"
                              r"|CREDENTIALS?$|_DB_URL$")


def literal_credentials(text: str) -> list[str]:
    """The credential values written out in ``text`` (a shell reference such as ``$X`` is none)."""
    found = [m.group(0) for m in _KEY_MATERIAL.finditer(text)]
    found += [m.group(0) for m in _URL_PASSWORD.finditer(text)
              if not _SHELL_REFERENCE.match(m.group(1).strip("\"'"))]
    found += [m.group(0) for m in _ENV_LITERAL.finditer(text) if _SECRET_ENV_NAME.search(m.group(1))]
    for match in _SECRET_ASSIGNMENT.finditer(text):
        value = match.group(2).strip("\"'")
        if value and not _SHELL_REFERENCE.match(value) and value.lower() not in ("true", "false"):
            found.append(match.group(0))
    return found


@pytest.mark.parametrize("line", [
    'PLAIT_DB_URL=postgresql+psycopg://plait:hunter2@db:5432/plait',
    'value: "postgresql://plait:s3cret@db/plait"',
    "AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "--from-literal=AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI",
    "id AKIAIOSFODNN7EXAMPLE",
    "password: hunter2",
    "--from-literal=api-token=abc123",
    "- name: AWS_SECRET_ACCESS_KEY\n  value: wJalrXUtnFEMI",
    "- name: GITHUB_TOKEN  # for the API\n  value: ghp_abc",
])
def test_the_credential_scan_finds_literal_values(line):
    assert literal_credentials(line)


@pytest.mark.parametrize("line", [
    '--from-literal=url="postgresql+psycopg://plait:${PLAIT_DB_PASSWORD}@db:5432/plait"',
    '--from-literal=AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"',
    "automountServiceAccountToken: false",
    "key: AWS_SECRET_ACCESS_KEY",
    "secretKeyRef:",
    "PLAIT_K8S_SECRETS=plait-secrets",
    "- name: PLAIT_K8S_SECRETS\n  value: plait-secrets",
])
def test_the_credential_scan_passes_references(line):
    assert literal_credentials(line) == []


@pytest.mark.parametrize("path", sorted(p for p in DEPLOY.rglob("*") if p.is_file()), ids=lambda p: p.name)
def test_no_file_in_deploy_holds_a_credential(path):
    assert literal_credentials(path.read_text()) == []


def test_credentials_reach_containers_only_from_secrets():
    assert not [doc for _, doc in all_documents() if doc["kind"] == "Secret"]
    containers = [c for d in of_kind("Deployment") for c in d["spec"]["template"]["spec"]["containers"]]
    assert containers
    for container in containers:
        for entry in container.get("env", []):
            if _SECRET_ENV_NAME.search(entry["name"]):
                assert "value" not in entry and "secretKeyRef" in entry["valueFrom"], entry
