"""The simulated kubelet (plait.testing.kubelet) running pods created through the real client.

Every pod here is created with CoreV1Api against the emulator, as plait's Kubernetes platform
creates them, and its containers run as real local processes: what is checked is what a
client sees (status, logs) and what happened on this machine (processes, files).
"""

from __future__ import annotations

import base64
import os
import sys
import time
from pathlib import Path

import pytest

kubernetes = pytest.importorskip("kubernetes")
from kubernetes.client import CoreV1Api  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402
from plait.testing.kubeapi import KubeAPI  # noqa: E402
from plait.testing.kubelet import Kubelet  # noqa: E402
from plait.testing.lifecycle import alive  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the simulated kubelet needs root")

NS = "default"
PY = sys.executable


@pytest.fixture
def kube():
    with KubeAPI(graceful_pods=True) as api:
        yield api


@pytest.fixture
def core(kube):
    return CoreV1Api(kube.api_client())


@pytest.fixture
def node(kube, tmp_path):
    with Kubelet(kube, capacity={"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "0"},
                 workdir=tmp_path / "node") as kubelet:
        yield kubelet


def container(name="main", command=("sh", "-c", "echo hello"), image="python:3.11", **extra):
    return {"name": name, "image": image, "command": list(command), **extra}


def pod(name, *containers, init=(), volumes=(), annotations=None, cpu=None):
    cs = list(containers) or [container()]
    if cpu is not None:
        for c in cs:
            c["resources"] = {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}
    spec = {"restartPolicy": "Never", "containers": cs}
    if init:
        spec["initContainers"] = list(init)
    if volumes:
        spec["volumes"] = [{"name": v, "emptyDir": {}} for v in volumes]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"plait.dev/execution": "e1"},
                         "annotations": annotations or {}},
            "spec": spec}


def wait_for(kube, name, check, timeout=15.0):
    """Wait until ``check(pod)`` holds for the stored pod (a dict); return that pod."""
    seen = {}

    def holds():
        seen["pod"] = kube.get("pods", name, NS)
        return seen["pod"] is not None and bool(check(seen["pod"]))

    assert kube.wait(holds, timeout), f"pod {name} never got there: {seen.get('pod')}"
    return seen["pod"]


def phase_is(*phases):
    return lambda p: (p.get("status") or {}).get("phase") in phases


def state_of(p, name="main", key="containerStatuses"):
    for cs in (p.get("status") or {}).get(key) or []:
        if cs["name"] == name:
            return cs["state"]
    return {}


def waiting_with(reason, name="main", key="containerStatuses"):
    return lambda p: (state_of(p, name, key).get("waiting") or {}).get("reason") == reason


# ---- running ------------------------------------------------------------------------------


def test_a_pods_command_runs_on_the_node_and_its_output_is_the_pod_log(core, kube, node):
    core.create_namespaced_pod(NS, pod("p", container(command=(
        "sh", "-c", "echo out; echo err >&2; echo $HOSTNAME"))))
    wait_for(kube, "p", phase_is("Succeeded"))
    read = core.read_namespaced_pod("p", NS)
    assert read.spec.node_name == "node-1"
    assert {c.type: c.status for c in read.status.conditions}["PodScheduled"] == "True"
    term = read.status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (0, "Completed")
    assert term.started_at is not None and term.finished_at is not None
    assert core.read_namespaced_pod_log("p", NS) == "out\nerr\np\n"
    assert node.started[(NS, "p")] == 1


def test_a_pod_goes_pending_running_succeeded(core, kube, node, tmp_path):
    release = tmp_path / "release"
    core.create_namespaced_pod(NS, pod("p", container(command=(
        "sh", "-c", f"while [ ! -e {release} ]; do sleep 0.02; done"))))
    running = wait_for(kube, "p", phase_is("Running"))
    assert "running" in state_of(running)
    assert running["status"]["containerStatuses"][0]["ready"] is True
    release.touch()
    wait_for(kube, "p", phase_is("Succeeded"))


def test_an_init_container_writes_into_an_emptydir_the_main_container_reads(core, kube, node):
    assert not Path("/data").exists()
    mount = [{"name": "work", "mountPath": "/data/in"}]
    core.create_namespaced_pod(NS, pod(
        "p", container(command=("cat", "/data/in/f"), volumeMounts=mount),
        init=[container("fetch", ("sh", "-c", "echo fetched > /data/in/f"), volumeMounts=mount)],
        volumes=["work"]))
    done = wait_for(kube, "p", phase_is("Succeeded", "Failed"))
    assert core.read_namespaced_pod_log("p", NS) == "fetched\n"
    assert state_of(done, "fetch", "initContainerStatuses")["terminated"]["reason"] == "Completed"
    assert not Path("/data").exists()  # the mount point was made in the container's own root


def test_a_failing_init_container_fails_the_pod_and_the_main_container_never_starts(
        core, kube, node, tmp_path):
    ran = tmp_path / "main-ran"
    core.create_namespaced_pod(NS, pod(
        "p", container(command=("touch", str(ran))),
        init=[container("setup", ("sh", "-c", "exit 2"))]))
    done = wait_for(kube, "p", phase_is("Failed"))
    assert state_of(done, "setup", "initContainerStatuses")["terminated"]["exitCode"] == 2
    assert "waiting" in state_of(done)
    deadline = time.monotonic() + 10
    while not node.finished(NS, "p") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert node.finished(NS, "p")
    assert node.started[(NS, "p")] == 1 and not ran.exists()


def test_env_from_a_secret_is_resolved_from_its_base64_data(core, kube, node):
    core.create_namespaced_secret(NS, {"metadata": {"name": "creds"},
                                       "data": {"token": base64.b64encode(b"s3cr3t").decode()}})
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
           {"name": "PLAIN", "value": "v-$(TOKEN)"}]
    core.create_namespaced_pod(NS, pod("p", container(
        command=("sh", "-c", 'echo "$TOKEN $PLAIN"'), env=env)))
    wait_for(kube, "p", phase_is("Succeeded"))
    assert core.read_namespaced_pod_log("p", NS) == "s3cr3t v-s3cr3t\n"


def test_a_missing_secret_leaves_the_container_waiting_with_create_container_config_error(
        core, kube, node):
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "token"}}}]
    core.create_namespaced_pod(NS, pod("p", container(env=env)))
    waiting = wait_for(kube, "p", waiting_with("CreateContainerConfigError"))
    assert state_of(waiting)["waiting"] == {"reason": "CreateContainerConfigError",
                                            "message": 'secret "nope" not found'}
    assert core.read_namespaced_pod("p", NS).status.phase == "Pending"
    assert node.started[(NS, "p")] == 0


def test_a_container_waiting_for_its_secret_starts_once_the_secret_exists(core, kube, node):
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "late", "key": "token"}}}]
    core.create_namespaced_pod(NS, pod("p", container(command=("sh", "-c", "echo $TOKEN"),
                                                      env=env)))
    wait_for(kube, "p", waiting_with("CreateContainerConfigError"))
    core.create_namespaced_secret(NS, {"metadata": {"name": "late"},
                                       "data": {"token": base64.b64encode(b"here").decode()}})
    wait_for(kube, "p", phase_is("Succeeded"))
    assert core.read_namespaced_pod_log("p", NS) == "here\n"


def test_exit_code_3_fails_the_pod_with_exit_code_3(core, kube, node):
    core.create_namespaced_pod(NS, pod("p", container(command=("sh", "-c", "exit 3"))))
    done = wait_for(kube, "p", phase_is("Succeeded", "Failed"))
    assert done["status"]["phase"] == "Failed"
    assert state_of(done)["terminated"]["exitCode"] == 3
    assert state_of(done)["terminated"]["reason"] == "Error"


def test_the_oom_annotation_ends_the_container_oom_killed_with_137(core, kube, node, tmp_path):
    core.create_namespaced_pod(NS, pod("p", container(command=("sleep", "30")),
                                       annotations={"plait.test/oom": "true"}))
    done = wait_for(kube, "p", phase_is("Succeeded", "Failed"))
    assert done["status"]["phase"] == "Failed"
    assert state_of(done)["terminated"]["reason"] == "OOMKilled"
    assert state_of(done)["terminated"]["exitCode"] == 137
    assert node.started[(NS, "p")] == 1


def test_an_image_that_does_not_exist_waits_in_image_pull_back_off(core, kube, node):
    core.create_namespaced_pod(NS, pod("p", container(image="registry.example/does-not-exist:1")))
    wait_for(kube, "p", waiting_with("ImagePullBackOff"))
    assert core.read_namespaced_pod("p", NS).status.phase == "Pending"
    assert node.started[(NS, "p")] == 0


def test_host_aliases_are_written_into_the_pods_own_etc_hosts(core, kube, node):
    host_before = Path("/etc/hosts").read_text()
    assert "trainer-master-0" not in host_before
    spec = pod("p", container(command=(PY, "-c", "import socket; print(socket.gethostbyname('trainer-master-0'))")))
    spec["spec"]["hostAliases"] = [{"ip": "127.0.0.1", "hostnames": ["trainer-master-0", "trainer-worker-0"]}]
    core.create_namespaced_pod(NS, spec)
    core.create_namespaced_pod(NS, pod("plain", container(command=("cat", "/etc/hosts"))))
    wait_for(kube, "p", phase_is("Succeeded", "Failed"))
    wait_for(kube, "plain", phase_is("Succeeded", "Failed"))
    assert core.read_namespaced_pod_log("p", NS) == "127.0.0.1\n"
    assert core.read_namespaced_pod_log("plain", NS) == host_before  # no aliases: the host's file
    assert Path("/etc/hosts").read_text() == host_before  # written in the pod's own mount namespace


# ---- scheduling ---------------------------------------------------------------------------


def test_a_pod_that_does_not_fit_is_unschedulable_until_another_pod_finishes(
        core, kube, node, tmp_path):
    release = tmp_path / "release"
    core.create_namespaced_pod(NS, pod("big", container(command=(
        "sh", "-c", f"while [ ! -e {release} ]; do sleep 0.02; done")), cpu="1500m"))
    wait_for(kube, "big", phase_is("Running"))
    core.create_namespaced_pod(NS, pod("next", cpu="1"))

    def unschedulable(p):
        return [c for c in (p.get("status") or {}).get("conditions") or []
                if c["type"] == "PodScheduled" and c["status"] == "False"]

    waiting = wait_for(kube, "next", unschedulable)
    assert unschedulable(waiting)[0]["reason"] == "Unschedulable"
    assert unschedulable(waiting)[0]["message"] == "0/1 nodes are available: 1 Insufficient cpu."
    assert waiting["status"]["phase"] == "Pending" and not waiting["spec"].get("nodeName")
    assert node.started[(NS, "next")] == 0
    release.touch()
    wait_for(kube, "next", phase_is("Succeeded"))
    assert core.read_namespaced_pod("next", NS).spec.node_name == "node-1"


def test_pods_sharing_the_node_never_request_more_than_its_capacity(core, kube, node):
    script = "import time; print(time.time()); time.sleep(0.3); print(time.time())"
    names = [f"p{i}" for i in range(4)]
    for name in names:  # 1 cpu each, 2 cpus: two at a time
        core.create_namespaced_pod(NS, pod(name, container(command=(PY, "-c", script)),
                                           cpu="1"))
    for name in names:
        wait_for(kube, name, phase_is("Succeeded"))
    spans = [tuple(map(float, core.read_namespaced_pod_log(n, NS).split())) for n in names]
    most = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert most == 2


# ---- deletion, eviction, node loss ----------------------------------------------------------


def test_deleting_a_running_pod_kills_its_whole_process_group_and_removes_it(core, kube, node):
    core.create_namespaced_pod(NS, pod("p", container(command=(
        "sh", "-c", "sleep 300 & echo $!; wait"))))
    wait_for(kube, "p", phase_is("Running"))
    stream = core.read_namespaced_pod_log("p", NS, follow=True, _preload_content=False)
    child = int(stream.readline())  # the background sleep's pid, once it is printed
    stream.release_conn()
    main = node.pids(NS, "p")[0]
    assert alive(child) and alive(main)
    core.delete_namespaced_pod("p", NS)
    assert kube.wait(lambda: kube.get("pods", "p", NS) is None, 15)
    deadline = time.monotonic() + 5
    while (alive(child) or alive(main)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(child) and not alive(main)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("p", NS)
    assert err.value.status == 404


def test_evict_fails_the_pod_with_reason_evicted(core, kube, node):
    core.create_namespaced_pod(NS, pod("p", container(command=("sleep", "300"))))
    wait_for(kube, "p", phase_is("Running"))
    main = node.pids(NS, "p")[0]
    node.evict("p")
    read = core.read_namespaced_pod("p", NS)
    assert (read.status.phase, read.status.reason) == ("Failed", "Evicted")
    assert not alive(main)


def test_an_evicted_pod_that_is_deleted_is_removed_once_the_kubelet_confirms(core, kube, node):
    core.create_namespaced_pod(NS, pod("p", container(command=("sleep", "300"))))
    wait_for(kube, "p", phase_is("Running"))
    node.evict("p")
    core.delete_namespaced_pod("p", NS)  # with graceful_pods: only marked, until the kubelet confirms
    assert kube.wait(lambda: kube.get("pods", "p", NS) is None, 15), kube.get("pods", "p", NS)


def test_a_lost_node_kills_its_processes_and_its_pods_are_failed_and_deleted(core, kube, node):
    core.create_namespaced_pod(NS, pod("p", container(command=("sleep", "300"))))
    wait_for(kube, "p", phase_is("Running"))
    main = node.pids(NS, "p")[0]
    node.lose_node()
    assert kube.get("pods", "p", NS) is None
    assert not alive(main)
    core.create_namespaced_pod(NS, pod("later"))
    waiting = wait_for(kube, "later", lambda p: (p.get("status") or {}).get("conditions"))
    assert waiting["status"]["conditions"][0]["message"] == "no nodes available to schedule pods"
