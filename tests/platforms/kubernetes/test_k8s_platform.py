"""The ``kubernetes`` platform end to end: Python attempts as pods on the emulated cluster.

The engine talks to the API emulator through the real ``kubernetes`` client; the simulated
node runs each pod's container as a real process (``python -m plait.runtime.remote``) that
fetches the job, the code archive and the inputs from S3 (the moto server) and writes the
result there. Nothing here is mocked: what a test checks is what a user would see (the run's
outcome, its messages) and what the cluster saw (pods created and deleted, their manifests).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("kubernetes", reason="the Kubernetes platform needs the kubernetes client: pip install kubernetes")
import flows  # noqa: E402
from engine_process import wait_for  # noqa: E402
from k8s_cluster import AWS, Cluster  # noqa: E402
from plait.builtin.container_task import ContainerTask
from plait.builtin.python_task import PythonTask  # noqa: E402
from plait.model.wire import Placement  # noqa: E402
from plait.platforms.kubernetes import pods  # noqa: E402
from plait.platforms.kubernetes.platform import KubernetesPlatform  # noqa: E402
from plait.testing.lifecycle import LifecycleCase, TaskTypeLifecycleTests  # noqa: E402
from plait.testing.manifests import validate_manifest  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
TESTS = ROOT / "tests"
TOKEN = "k8s-secret-value-7f3a9c"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    with Cluster(tmp_path_factory.mktemp("cluster"), secrets={"api-token": TOKEN}) as c:
        yield c


def plait_cli(cluster: Cluster, home: Path, *args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plait.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=cluster.engine_env(home, **env))


# ---- the lifecycle suite, on pods -------------------------------------------------------------


def _starts(marker: Path):
    return lambda: len(marker.read_text().splitlines()) if marker.exists() else 0


class TestPythonTaskOnKubernetes(TaskTypeLifecycleTests):
    @pytest.fixture(autouse=True)
    def _cluster(self, cluster: Cluster, monkeypatch: pytest.MonkeyPatch):
        import fsspec

        for name, value in AWS.items():  # this process is the engine: it reads and writes S3 too
            monkeypatch.setenv(name, value)
        monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": cluster.endpoint})
        self.cluster = cluster
        self.platform = KubernetesPlatform(cluster.config())
        yield
        self.platform.close()
        cluster.wait_until_empty()  # an abort stops the work, a success leaves nothing behind

    def case(self, tmp_path: Path) -> LifecycleCase:
        marker = tmp_path / "starts"
        return LifecycleCase(
            new_task_type=PythonTask,
            quick=flows.add.template, quick_inputs={"a": 2, "b": 3}, expected_outputs={"o0": 5},
            slow=flows.slow.template, slow_inputs={"seconds": 300.0, "marker": str(marker)},  # aborted by every test: outlasts the attach tests' watch (twice its start)
            starts=_starts(marker), start_timeout=10.0,
            attaches_after_restart=True,  # the pod outlives the engine; its name finds it again
            platform=self.platform, blob_url=self.cluster.blob_url,
        )


slow_container = __import__("plait").container_task(
    "k8s-sleeper", image="debian:bookworm-slim",
    command=["sh", "-c", "echo started >> {{inputs.marker}}; sleep 300; echo 1 > {{outputs}}/n"],
    inputs={"marker": str}, outputs={"n": int},
)


class TestContainerTaskOnKubernetes(TestPythonTaskOnKubernetes):
    def case(self, tmp_path: Path) -> LifecycleCase:
        marker = tmp_path / "starts"
        return LifecycleCase(
            new_task_type=ContainerTask,
            quick=flows.echo_container.template, quick_inputs={"word": "abc"},
            expected_outputs={"shout": "ABC", "n": 42},
            slow=slow_container.template, slow_inputs={"marker": str(marker)},
            starts=_starts(marker), start_timeout=10.0, attaches_after_restart=True,
            platform=self.platform, blob_url=self.cluster.blob_url,
        )


# ---- whole workflows through the CLI ---------------------------------------------------------------


def pod_names(cluster: Cluster) -> list[str]:
    return sorted(f"{p['metadata']['name']} ({(p.get('status') or {}).get('phase')}, deleting: {p['metadata'].get('deletionTimestamp')})" for p in cluster.pods())


def test_a_workflow_with_a_map_runs_on_pods_and_leaves_none(cluster: Cluster, tmp_path: Path):
    wait_for(lambda: not cluster.pods(), f"no pod left by earlier tests: {pod_names(cluster)}")
    before = cluster.kube.created["Pod"]
    run = plait_cli(cluster, tmp_path / "home", "run", "tests/flows.py:fan_out", "--n", "4",
                    "--platform", "kubernetes")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "12" in run.stdout  # 2 * (0 + 1 + 2 + 3)
    assert cluster.kube.created["Pod"] - before == 6  # numbers, 4 items, total: one pod each
    wait_for(lambda: not cluster.pods(), "every attempt's pod deleted once its result was read")


def test_a_map_is_packed_into_pods_with_results_logs_and_retries_per_item(cluster: Cluster, tmp_path: Path):
    wait_for(lambda: not cluster.pods(), f"no pod left by earlier tests: {pod_names(cluster)}")
    before = cluster.kube.created["Pod"]
    markers = tmp_path / "markers"
    markers.mkdir()
    home = tmp_path / "home"
    run = plait_cli(cluster, home, "run", "tests/flows.py:flaky_map", "--n", "12", "--marker-dir", str(markers),
                    "--platform", "kubernetes", PLAIT_K8S_ITEMS_PER_POD="5")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "[0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110]" in run.stdout.replace("\n", "").replace(" ", "").replace(",", ", ")
    # numbers; 12 items in pods of 5, 5 and 2; item 3's retry alone; no per-item pods
    assert cluster.kube.created["Pod"] - before == 1 + 3 + 1, pod_names(cluster)
    attempts = {p.name: len(p.read_text().splitlines()) for p in markers.iterdir()}
    assert attempts == {f"item-{i}": 2 if i == 3 else 1 for i in range(12)}
    logs = sorted(home.glob("runs/*/map-flaky_item/7/1/stdout.log"))
    assert logs and logs[0].read_text() == "item 7 says hello\n"  # its own output, not the pod's


def test_a_container_task_runs_its_command_unchanged_between_plaits_steps_with_files_in_and_out(
        cluster: Cluster, tmp_path: Path):
    wait_for(lambda: not cluster.pods(), f"no pod left by earlier tests: {pod_names(cluster)}")
    seen: dict[str, dict] = {}
    sub = cluster.kube.subscribe("pods")
    try:
        run = plait_cli(cluster, tmp_path / "home", "run", "tests/flows.py:count_lines", "--text", "a\nb\nc\n",
                        "--platform", "kubernetes")
        while (event := sub.get(timeout=0.1)) is not None:
            seen.setdefault(event.object["metadata"]["name"], event.object)
    finally:
        sub.close()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 lines: A B C" in run.stdout
    counter = next(p for p in seen.values() if p["metadata"]["labels"]["plait.dev/task-type"] == "container")
    validate_manifest(counter)
    steps = [(c["name"], c["image"]) for c in counter["spec"]["initContainers"] + counter["spec"]["containers"]]
    assert steps == [("inputs", "ghcr.io/plait-dev/plait:latest"), ("task", "busybox:1.36"),
                     ("outputs", "ghcr.io/plait-dev/plait:latest")]
    command = counter["spec"]["initContainers"][1]["command"]
    assert command[:2] == ["sh", "-c"] and "wc -l < /plait/inputs/text" in command[2] and "/plait/outputs/lines" in command[2]
    assert all(m["mountPath"] == "/plait" for c in counter["spec"]["initContainers"] for m in c["volumeMounts"])
    log = sorted((tmp_path / "home").glob("runs/*/line_counter/1/stdout.log"))
    assert log and "counted /plait/inputs/text" in log[0].read_text()


def test_a_failing_container_command_is_the_users_error_with_its_output(cluster: Cluster, tmp_path: Path):
    run = plait_cli(cluster, tmp_path / "home", "run", "tests/flows.py:container_fails", "--x", "7",
                    "--platform", "kubernetes")
    assert run.returncode != 0
    out = " ".join((run.stdout + run.stderr).split())  # the console wraps long lines
    assert "command exited with code 3" in out and "about to fail 7" in out, out


def test_the_users_code_reaches_the_pod_in_the_archive_not_from_the_engines_disk(cluster: Cluster, tmp_path: Path):
    project = tmp_path / "project"
    (project / "pkg").mkdir(parents=True)
    (project / "pkg" / "__init__.py").write_text("")
    (project / "pkg" / "helpers.py").write_text("GREETING = 'from the archive'\n")
    (project / "pkg" / "wf.py").write_text(
        "import plait\nfrom pkg.helpers import GREETING\n\n"
        "@plait.task\ndef where() -> str:\n    return f'{GREETING} at {__file__}'\n\n"
        "@plait.workflow\ndef main() -> str:\n    return where()\n")
    run = plait_cli(cluster, tmp_path / "home", "run", f"{project / 'pkg' / 'wf.py'}:main", "--platform", "kubernetes",
                    PYTHONPATH=str(project))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "from the archive at " in run.stdout
    ran_from = run.stdout.split("from the archive at ", 1)[1].split()[0].strip("'\"")
    cache = Path(cluster.pod_env()["PLAIT_CODE_CACHE"])
    assert ran_from.startswith(str(cache)), f"the pod imported {ran_from}, not the unpacked archive under {cache}"


def test_secrets_reach_the_pod_by_reference_and_never_appear_in_a_manifest_or_a_blob(cluster: Cluster, tmp_path: Path):
    seen: list[dict] = []
    sub = cluster.kube.subscribe("pods")
    try:
        run = plait_cli(cluster, tmp_path / "home", "run", "tests/flows.py:env_and_secret", "--name", "ada",
                        "--platform", "kubernetes")
        while (event := sub.get(timeout=0.1)) is not None:
            seen.append(event.object)
    finally:
        sub.close()
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"howdy ada, token has {len(TOKEN)} characters" in run.stdout
    assert seen, "no pod was seen"
    env = seen[0]["spec"]["containers"][0]["env"]
    ref = next(e for e in env if e["name"] == "PLAIT_SECRET_API_TOKEN")
    assert ref["valueFrom"] == {"secretKeyRef": {"name": "plait-secrets", "key": "api-token"}}
    assert all(TOKEN not in json.dumps(obj) for obj in seen)
    import boto3

    s3 = boto3.client("s3", endpoint_url=cluster.endpoint, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=cluster.bucket):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=cluster.bucket, Key=obj["Key"])["Body"].read()
            assert TOKEN.encode() not in body, f"the secret's value is in s3://{cluster.bucket}/{obj['Key']}"


def test_a_local_folder_as_blob_store_is_refused_before_anything_starts(cluster: Cluster, tmp_path: Path):
    before = cluster.kube.created["Pod"]
    run = plait_cli(cluster, tmp_path / "home", "run", "tests/flows.py:arithmetic", "--a", "1",
                    "--platform", "kubernetes", PLAIT_BLOB_URL=str(tmp_path / "blobs"))
    assert run.returncode != 0
    out = " ".join((run.stdout + run.stderr).split())  # the console wraps long lines
    assert "which pods on the cluster cannot read or write" in out and "PLAIT_BLOB_URL" in out, out
    assert cluster.kube.created["Pod"] == before


# ---- failures explained ---------------------------------------------------------------------------


def test_a_pod_killed_for_memory_fails_naming_its_memory_limit(cluster: Cluster, tmp_path: Path):
    run = plait_cli(cluster, tmp_path / "home", "run", "tests/flows.py:arithmetic", "--a", "1",
                    "--platform", "kubernetes", PLAIT_K8S_ANNOTATIONS="plait.test/oom=true")
    assert run.returncode != 0
    out = " ".join((run.stdout + run.stderr).split())  # the console wraps long lines
    assert "OOMKilled" in out and "memory limit of 256Mi" in out, out


def test_an_image_that_cannot_be_pulled_fails_after_the_grace_naming_the_image(cluster: Cluster, tmp_path: Path):
    run = plait_cli(cluster, tmp_path / "home", "run", "tests/flows.py:arithmetic", "--a", "1",
                    "--platform", "kubernetes", PLAIT_K8S_IMAGE="registry.example/does-not-exist:1",
                    PLAIT_K8S_IMAGE_PULL_GRACE="1")
    assert run.returncode != 0
    out = " ".join((run.stdout + run.stderr).split())  # the console wraps long lines
    assert "registry.example/does-not-exist:1 cannot be pulled" in out, out
    wait_for(lambda: not cluster.pods(), f"the stuck pod deleted: {pod_names(cluster)}")


def test_a_pod_no_node_fits_fails_after_the_grace_naming_its_requests(cluster: Cluster, tmp_path: Path):
    run = plait_cli(cluster, tmp_path / "home", "run", "tests/flows.py:arithmetic", "--a", "1",
                    "--platform", "kubernetes", PLAIT_K8S_DEFAULT_CPU="64", PLAIT_K8S_UNSCHEDULABLE_GRACE="1")
    assert run.returncode != 0
    out = " ".join((run.stdout + run.stderr).split())  # the console wraps long lines
    assert "no node can run the pod, which requests cpu=64" in out and "Insufficient cpu" in out, out
    wait_for(lambda: not cluster.pods(), "the unschedulable pod deleted")


# ---- the manifest -----------------------------------------------------------------------------------


def test_the_pod_manifest_is_valid_and_carries_resources_gpus_and_labels(cluster: Cluster):
    placement = Placement(execution_id="20261201-x", node_id="train", attempt_id="20261201-x/train/1",
                          project="pricing", domain="production", task="train", image="ghcr.io/acme/train:3",
                          cpu=2.5, memory="8Gi", gpu=2, timeout=600, secrets=("api-token",))
    manifest = pods.python_pod(cluster.config(), placement, "pricing-production", "s3://b/plait/k8s/x/job.json",
                               {"MODE": "fast"})
    validate_manifest(manifest)
    container = manifest["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/acme/train:3"
    assert container["resources"] == {"requests": {"cpu": "2500m", "memory": "8Gi", "nvidia.com/gpu": "2"},
                                      "limits": {"memory": "8Gi", "nvidia.com/gpu": "2"}}
    assert pods.GPU_TOLERATION in manifest["spec"]["tolerations"]
    assert manifest["spec"]["activeDeadlineSeconds"] == 600
    labels = manifest["metadata"]["labels"]
    assert labels["plait.dev/project"] == "pricing" and labels["plait.dev/node"] == "train"
    assert {"name": "MODE", "value": "fast"} in container["env"]
    assert manifest["metadata"]["name"] == pods.identity(placement).name()


def test_a_tasks_own_placement_goes_over_the_projects_and_the_platforms(cluster: Cluster):
    import plait
    from plait.runtime.payload import placement as placement_of
    from plait.testing.lifecycle import make_context

    @plait.task(pod={"node_selector": {"pool": "highmem", "zone": "b"},
                     "tolerations": [{"key": "highmem", "operator": "Exists", "effect": "NoSchedule"}],
                     "annotations": {"team": "pricing"}})
    def heavy(x: int) -> int:
        return x

    config = cluster.config(node_selector={"pool": "general", "disk": "ssd"}, annotations={"team": "platform"},
                            projects={"pricing": {"node_selector": {"zone": "a", "rack": "r7"}, "annotations": {"cost": "p1"},
                                                  "tolerations": [{"key": "pricing", "operator": "Exists"}]}})
    platform = KubernetesPlatform(config)
    ctx = make_context(Path("/nonexistent"), "x/heavy/1", {"x": 1}, platform=platform, blob_url=cluster.blob_url)
    platform.close()
    ctx.project = "pricing"
    manifest = pods.python_pod(config, placement_of(ctx, heavy.template), "pricing-development", "s3://b/j.json", {})
    validate_manifest(manifest)
    assert manifest["spec"]["nodeSelector"] == {"pool": "highmem", "disk": "ssd", "zone": "b", "rack": "r7"}
    tolerations = manifest["spec"]["tolerations"]
    assert {"key": "highmem", "operator": "Exists", "effect": "NoSchedule"} in tolerations
    assert {"key": "pricing", "operator": "Exists"} in tolerations, tolerations
    annotations = manifest["metadata"]["annotations"]
    assert annotations["team"] == "pricing" and annotations["cost"] == "p1"
    with pytest.raises(ValueError, match="a toleration has"):
        plait.task(pod={"tolerations": [{"key": "x", "effects": "NoSchedule"}]})(lambda x: x)


def test_the_platform_is_registered_and_its_name_is_kept_in_every_handle(cluster: Cluster, tmp_path: Path):
    home = tmp_path / "home"
    run = plait_cli(cluster, home, "run", "tests/flows.py:arithmetic", "--a", "1", "--platform", "kubernetes")
    assert run.returncode == 0, run.stdout + run.stderr
    import sqlite3

    rows = sqlite3.connect(home / "plait.db").execute("select data from events where kind = 'attempt'").fetchall()
    handles = [json.loads(r[0]).get("handle") for r in rows if "handle" in json.loads(r[0])]
    assert handles and all(h["platform"] == "kubernetes" for h in handles)

