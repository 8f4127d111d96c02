"""Launching registered workflows on a real ``plait server`` whose engine worker runs them
(SQLite and PostgreSQL): launch plans' default and fixed inputs, abort, relaunch and recover.

The workflows (``launch_flows.py``) are registered with ``plait register`` and their source
folder is then removed, so the server's engine can only run them from the code archive. Each
task appends a line to a file per execution and node when it runs: runs are counted there
and in the events.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import STORES, ServerProcess, bootstrap, server_env, store_url, wait_for
from plait.model.errors import EntityNotFoundError
from plait.model.registered import LaunchPlanSpec
from plait.service.query import ExecutionFilter, list_executions
from plait.service.register import register_local
from plait.service.remote_launch import launch_registered, relaunch
from plait.storage.blobs import BlobStore
from plait.storage.entities import EntityStore
from plait.storage.events import EventStore

FLOWS = Path(__file__).with_name("launch_flows.py")
PROJECT, DOMAIN = "alpha", "development"
WHERE = f"/projects/{PROJECT}/domains/{DOMAIN}"
LEASE_S = "3"
CONCURRENCY = 2


def register(server: ServerProcess, key: str, home: Path, version: str = "v1") -> None:
    """``plait register`` launch_flows.py from a folder of its own, then remove that folder."""
    source = home / f"source-{version}"
    source.mkdir()
    shutil.copy(FLOWS, source / "flows.py")
    env = {**server_env("", home), "PLAIT_SERVER": server.url, "PLAIT_API_KEY": key}
    env.pop("PLAIT_DB_URL")
    done = subprocess.run([sys.executable, "-m", "plait.cli", "register", str(source / "flows.py"), "--project", PROJECT,
                           "--domain", DOMAIN, "--version", version, "--activate"],
                          env=env, capture_output=True, text=True, timeout=120, cwd=home)
    assert done.returncode == 0, done.stdout + done.stderr
    shutil.rmtree(source)


@pytest.fixture(scope="module", params=STORES)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server with one engine worker (short leases), project alpha and launch_flows registered."""
    home = tmp_path_factory.mktemp(f"launch-{request.param}")
    with store_url(request.param, home) as url:
        key = bootstrap(url, home)
        server = ServerProcess(url, home, engines=1, env={
            "PLAIT_SERVER_LEASE_S": LEASE_S, "PLAIT_SERVER_ENGINE_CONCURRENCY": str(CONCURRENCY),
            "PLAIT_WORKERS": "3"})
        with server:
            with server.client(key) as admin:
                assert admin.post("/projects", json={"name": PROJECT}).status_code == 201
            register(server, key, home)
            yield {"server": server, "key": key, "home": home, "url": url}


@pytest.fixture
def api(world: dict[str, Any]) -> Iterator[httpx.Client]:
    with world["server"].client(world["key"]) as client:
        yield client


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    folder = tmp_path / "marks"
    folder.mkdir()
    return folder


def launch(api: httpx.Client, **body: Any) -> str:
    answer = api.post(f"{WHERE}/executions", json=body)
    assert answer.status_code == 201, answer.text
    out = answer.json()
    assert out["url"] == f"/api/v1/executions/{out['execution_id']}"
    return str(out["execution_id"])


def execution(api: httpx.Client, xid: str) -> dict[str, Any]:
    answer = api.get(f"/executions/{xid}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def ended(api: httpx.Client, xid: str) -> dict[str, Any] | None:
    found = execution(api, xid)
    return found if found["phase"] not in ("queued", "running") else None


def events(api: httpx.Client, xid: str) -> list[dict[str, Any]]:
    answer = api.get(f"/executions/{xid}/events")
    assert answer.status_code == 200, answer.text
    return list(answer.json())


def attempts(api: httpx.Client, xid: str) -> dict[str, int]:
    """How many attempts each node started, from the execution's events."""
    counts: dict[str, int] = {}
    for e in events(api, xid):
        if e["kind"] == "attempt" and e["phase"] == "running":
            counts[e["data"]["node"]] = counts.get(e["data"]["node"], 0) + 1
    return counts


def runs(marks: Path, xid: str) -> dict[str, list[str]]:
    """What each node of ``xid`` wrote when it ran (one line per run and step)."""
    folder = marks / xid
    return {p.name: p.read_text().split() for p in sorted(folder.iterdir()) if not p.name.endswith(".pid")} \
        if folder.exists() else {}


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_a_launch_plan_launch_merges_defaults_and_overrides_and_runs_to_success(
        api: httpx.Client, world: dict[str, Any], marks: Path):
    xid = launch(api, launch_plan="nightly", inputs={"a": 2, "marks": str(marks)}, tags=["t1"])
    done = wait_for(lambda: ended(api, xid), f"execution {xid} to end", servers=[world["server"]])
    assert done["phase"] == "succeeded", (done["error"], world["server"].output())
    assert done["outputs"] == {"o0": (2 + 5) * 10}  # b from the plan's defaults, factor fixed
    assert done["inputs"] == {"a": 2, "marks": str(marks), "b": 5, "factor": 10}
    assert runs(marks, xid) == {"add": ["done"], "scale": ["done"]}

    overridden = launch(api, launch_plan="nightly", inputs={"a": 2, "b": 1, "marks": str(marks)})
    done = wait_for(lambda: ended(api, overridden), f"execution {overridden} to end", servers=[world["server"]])
    assert (done["phase"], done["outputs"]) == ("succeeded", {"o0": (2 + 1) * 10})
    listed = api.get(f"{WHERE}/executions", params={"launch_plan": "nightly", "launched_by": "admin"}).json()
    assert {xid, overridden} <= {row["id"] for row in listed["items"]}


def test_a_fixed_input_a_wrong_type_and_an_unknown_input_are_refused_naming_them(api: httpx.Client, marks: Path):
    refused = api.post(f"{WHERE}/executions", json={"launch_plan": "nightly",
                                                    "inputs": {"a": 1, "factor": 3, "marks": str(marks)}})
    assert refused.status_code == 400 and "fixes input 'factor'" in refused.json()["detail"]
    refused = api.post(f"{WHERE}/executions", json={"launch_plan": "nightly", "inputs": {"a": "two", "marks": "m"}})
    assert refused.status_code == 400 and "input 'a'" in refused.json()["detail"]
    assert "expected an int" in refused.json()["detail"]
    refused = api.post(f"{WHERE}/executions", json={"launch_plan": "nightly", "inputs": {"a": 1, "c": 1, "marks": "m"}})
    assert refused.status_code == 400 and "no input 'c'" in refused.json()["detail"]
    refused = api.post(f"{WHERE}/executions", json={"launch_plan": "nightly", "inputs": {"marks": "m"}})
    assert refused.status_code == 400 and "needs input 'a'" in refused.json()["detail"]
    missing = api.post(f"{WHERE}/executions", json={"launch_plan": "weekly", "inputs": {}})
    assert missing.status_code == 404 and "weekly" in missing.json()["detail"]


def test_a_launch_plans_max_parallelism_limits_the_tasks_running_at_once(api: httpx.Client, world: dict[str, Any],
                                                                          marks: Path):
    """Each task of ``pair`` fails if the other runs beside it: they start together unless limited."""
    xid = launch(api, launch_plan="one_at_a_time", inputs={"marks": str(marks)})
    done = wait_for(lambda: ended(api, xid), f"execution {xid} to end", servers=[world["server"]])
    assert (done["phase"], done["error"]) == ("succeeded", None)
    assert sorted(done["outputs"]["o0"]) == ["left", "right"]
    assert sorted(runs(marks, xid).values()) == [["done"], ["done"]]  # each of the two ran once


def test_aborting_a_running_execution_stops_its_task(api: httpx.Client, world: dict[str, Any], marks: Path,
                                                     tmp_path: Path):
    gate = tmp_path / "gate"  # never opened: the task waits until it is stopped
    xid = launch(api, workflow="flows.gated", inputs={"a": 1, "b": 2, "marks": str(marks), "gate": str(gate)})
    pid_file = marks / xid / "wait.pid"
    wait_for(pid_file.exists, "the waiting task to start", servers=[world["server"]])
    pid = int(pid_file.read_text())
    assert alive(pid)

    answer = api.post(f"/executions/{xid}/abort")
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "requested"
    done = wait_for(lambda: ended(api, xid), "the aborted execution to end", timeout=30, servers=[world["server"]])
    assert done["phase"] == "aborted"
    assert "aborted by admin" in (done["error"] or "")
    wait_for(lambda: not alive(pid), f"the task's process {pid} to end", timeout=10)
    phases = [(e["kind"], e["entity"], e["phase"]) for e in events(api, xid)]
    assert ("attempt", "wait/1", "aborted") in phases
    assert runs(marks, xid) == {"add": ["done"], "wait": ["start"]}  # scale never started
    again = api.post(f"/executions/{xid}/abort")
    assert again.status_code == 200 and again.json()["outcome"] == "ended"


def test_a_queued_execution_is_aborted_at_once_without_running_anything(
        api: httpx.Client, world: dict[str, Any], marks: Path, tmp_path: Path):
    """The engine worker runs two at once (CONCURRENCY): two waiting executions fill it, so a
    third stays queued, unclaimed, and is aborted by the request itself."""
    gate = tmp_path / "gate"
    inputs = {"a": 1, "b": 2, "marks": str(marks), "gate": str(gate)}
    busy = [launch(api, workflow="flows.gated", inputs=inputs) for _ in range(CONCURRENCY)]
    for xid in busy:
        wait_for((marks / xid / "wait.pid").exists, "the engine's slots to fill", servers=[world["server"]])
    xid = launch(api, workflow="flows.gated", inputs=inputs)
    answer = api.post(f"/executions/{xid}/abort")
    assert answer.status_code == 200 and answer.json()["outcome"] == "aborted", answer.text
    done = execution(api, xid)
    assert done["phase"] == "aborted" and "aborted by admin before it started" in done["error"]
    assert [(e["kind"], e["phase"]) for e in events(api, xid)] == [("execution", "queued"), ("execution", "aborted")]
    gate.touch()
    for other in busy:
        assert wait_for(lambda other=other: ended(api, other), "the others to end")["phase"] == "succeeded"
    assert runs(marks, xid) == {}, "the aborted execution ran a task"


def test_relaunch_runs_the_same_version_with_the_same_or_edited_inputs(api: httpx.Client, world: dict[str, Any],
                                                                       marks: Path):
    first = launch(api, launch_plan="nightly", inputs={"a": 3, "marks": str(marks)})
    wait_for(lambda: ended(api, first), "the first execution to end", servers=[world["server"]])
    answer = api.post(f"/executions/{first}/relaunch", json={})
    assert answer.status_code == 201, answer.text
    same = answer.json()["execution_id"]
    edited = api.post(f"/executions/{first}/relaunch", json={"inputs": {"a": 4}, "tags": ["edited"]}).json()[
        "execution_id"]
    assert len({first, same, edited}) == 3
    for xid, output in ((same, 80), (edited, 90)):
        done = wait_for(lambda xid=xid: ended(api, xid), f"relaunched {xid} to end", servers=[world["server"]])
        assert (done["phase"], done["outputs"]) == ("succeeded", {"o0": output})
        assert done["execution"]["version"] == execution(api, first)["execution"]["version"]
    assert "edited" in execution(api, edited)["tags"] and "edited" not in execution(api, first)["tags"]
    fixed = api.post(f"/executions/{first}/relaunch", json={"inputs": {"factor": 2}})
    assert fixed.status_code == 400 and "fixes input 'factor'" in fixed.json()["detail"]


def test_recover_reruns_only_the_nodes_that_had_not_succeeded(api: httpx.Client, world: dict[str, Any],
                                                              marks: Path, tmp_path: Path):
    gate = tmp_path / "gate"  # closed: the middle node fails
    failed = launch(api, workflow="flows.fragile", inputs={"a": 1, "b": 1, "marks": str(marks), "gate": str(gate)},
                    tags=["big"])
    done = wait_for(lambda: ended(api, failed), "the execution to fail", servers=[world["server"]])
    assert done["phase"] == "failed"
    assert attempts(api, failed) == {"add": 1, "checked": 1}

    gate.touch()
    answer = api.post(f"/executions/{failed}/recover")
    assert answer.status_code == 201, answer.text
    recovered = answer.json()["execution_id"]
    done = wait_for(lambda: ended(api, recovered), "the recovery to end", servers=[world["server"]])
    assert (done["phase"], done["outputs"]) == ("succeeded", {"o0": (1 + 1) * 10 * 3})
    assert attempts(api, recovered) == {"checked": 1, "scale": 1}  # add's outputs were reused
    assert done["tags"] == ["big"]  # the recovery is found by the original's tags
    reused = [e for e in events(api, recovered) if e["kind"] == "node" and e["entity"] == "add"]
    assert [(e["phase"], e["data"].get("recovered_from")) for e in reused] == [("succeeded", failed)]
    assert runs(marks, failed) == {"add": ["done"], "checked": ["done"]}
    assert runs(marks, recovered) == {"checked": ["done"], "scale": ["done"]}

    refused = api.post(f"/executions/{recovered}/recover")
    assert refused.status_code == 400 and "succeeded" in refused.json()["detail"]


def test_recover_refuses_an_execution_that_has_not_ended(api: httpx.Client, world: dict[str, Any], marks: Path,
                                                         tmp_path: Path):
    gate = tmp_path / "gate"
    xid = launch(api, workflow="flows.gated", inputs={"a": 1, "b": 2, "marks": str(marks), "gate": str(gate)})
    wait_for((marks / xid / "wait.pid").exists, "the task to start", servers=[world["server"]])
    refused = api.post(f"/executions/{xid}/recover")
    assert refused.status_code == 400 and "has not ended" in refused.json()["detail"]
    gate.touch()
    wait_for(lambda: ended(api, xid), "the execution to end", servers=[world["server"]])


def test_abort_relaunch_and_recover_need_the_launcher_role_and_hide_other_projects(
        api: httpx.Client, world: dict[str, Any], marks: Path):
    server = world["server"]
    xid = launch(api, launch_plan="nightly", inputs={"a": 1, "marks": str(marks)})
    keys = {}
    for user, role in (("viewer-l", "viewer"), ("stranger-l", None)):
        assert api.post("/users", json={"name": user}).status_code == 201
        keys[user] = api.post(f"/users/{user}/keys", json={}).json()["key"]
        if role:
            assert api.put(f"/projects/{PROJECT}/members/{user}", json={"role": role}).status_code == 200
    for action in ("abort", "relaunch", "recover"):
        with server.client(keys["viewer-l"]) as viewer:
            assert viewer.post(f"/executions/{xid}/{action}").status_code == 403
        with server.client(keys["stranger-l"]) as stranger:
            answer = stranger.post(f"/executions/{xid}/{action}")
            assert (answer.status_code, answer.json()) == (404, {"detail": f"no execution {xid!r}"})
    wait_for(lambda: ended(api, xid), "the execution to end", servers=[server])


def test_plait_run_remote_and_executions_commands_go_through_the_server(world: dict[str, Any], marks: Path):
    env = {**os.environ, "PLAIT_SERVER": world["server"].url, "PLAIT_API_KEY": world["key"]}
    env.pop("PLAIT_DB_URL", None)

    def plait(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "plait.cli", *args], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    out = plait("run", "--remote", "nightly", "--project", PROJECT, "--domain", DOMAIN, "--a", "6",
                "--marks", str(marks), "--wait")
    xid = out.split()[0]
    assert "succeeded" in out and "110" in out, out
    again = plait("executions", "relaunch", xid).split()[0]
    with world["server"].client(world["key"]) as api:
        done = wait_for(lambda: ended(api, again), "the relaunch to end", servers=[world["server"]])
    assert done["outputs"] == {"o0": 110}


@pytest.mark.parametrize("kind", STORES)
def test_plait_engine_processes_run_launched_executions_beside_a_server_without_workers(
        kind: str, tmp_path: Path, marks: Path):
    """Scaling out: a server with no engine worker queues; a ``plait engine`` on its store runs."""
    home = tmp_path / "home"
    home.mkdir()
    with store_url(kind, home) as url:
        key = bootstrap(url, home)
        with ServerProcess(url, home, engines=0) as server, server.client(key) as api:
            assert api.post("/projects", json={"name": PROJECT}).status_code == 201
            register(server, key, home)
            xid = launch(api, launch_plan="nightly", inputs={"a": 1, "marks": str(marks)})
            assert execution(api, xid)["phase"] == "queued"
            engine = subprocess.run([sys.executable, "-m", "plait.cli", "engine", "--exit-when-idle"],
                                    env={**server_env(url, home), "PLAIT_WORKERS": "2"}, capture_output=True,
                                    text=True, timeout=120, cwd=tmp_path)
            assert engine.returncode == 0, engine.stderr
            done = execution(api, xid)
            assert (done["phase"], done["outputs"]) == ("succeeded", {"o0": 60}), (done, engine.stderr)


def test_the_launch_commands_work_on_the_local_store_without_a_server(tmp_path: Path, marks: Path):
    env = {**server_env(f"sqlite:///{tmp_path / 'plait.db'}", tmp_path), "PLAIT_WORKERS": "2"}

    def plait(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "plait.cli", *args], env=env, capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)
        assert (done.returncode == 0) == ok, done.stdout + done.stderr
        return done

    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(FLOWS, source / "flows.py")
    plait("register", str(source / "flows.py"), "--version", "v1", "--activate")
    shutil.rmtree(source)
    first = plait("run", "--remote", "nightly", "--a", "2", "--marks", str(marks)).stdout.split()[0]
    queued = plait("run", "--remote", "nightly@v1", "--a", "3", "--marks", str(marks)).stdout.split()[0]
    assert "aborted (it had not started)" in plait("executions", "abort", queued).stdout
    plait("engine", "--exit-when-idle")
    again = plait("executions", "relaunch", first, "--input", "a=4").stdout.split()[0]
    plait("engine", "--exit-when-idle")
    refused = plait("executions", "recover", again, ok=False)
    assert "succeeded" in refused.stderr
    assert runs(marks, first) == {"add": ["done"], "scale": ["done"]} and runs(marks, queued) == {}
    shown = plait("executions", "show", again, "--no-logs").stdout
    assert "succeeded" in shown and '"a": 4' in shown


# -- launching on a local store (the service functions the server's routes call) ----------------

PRICING_FLOWS = '''import plait


@plait.workflow
def flow(x: int) -> int:
    return x


nightly = plait.LaunchPlan(flow, default_inputs={"x": 1}, labels={"team": "pricing", "tier": "gold"})
'''


@pytest.fixture
def pricing(tmp_path: Path) -> Iterator[EventStore]:
    """A local store with pricing_flows (a workflow, its launch plan ``pricing_flows.nightly``
    with labels) registered in pricing/production."""
    (tmp_path / "pricing_flows.py").write_text(PRICING_FLOWS)
    store = EventStore(f"sqlite:///{tmp_path / 'plait.db'}")
    register_local(EntityStore(store), BlobStore(str(tmp_path / "blobs")), tmp_path / "pricing_flows.py",
                   "pricing", "production", "v1")
    yield store
    store.close()


def tagged(store: EventStore, tag: str) -> set[str]:
    where = ExecutionFilter("pricing", "production", tags=(tag,))
    return {row["id"] for row in list_executions(store, where=where).items}


def test_a_launch_plans_labels_tag_the_executions_launched_from_it(pricing: EventStore):
    planned = launch_registered(pricing, None, "pricing", "production", launch_plan="pricing_flows.nightly",
                                tags=["run=1"])
    launch_registered(pricing, None, "pricing", "production", workflow="pricing_flows.flow", inputs={"x": 2})
    again = relaunch(pricing, planned)
    assert tagged(pricing, "team=pricing") == tagged(pricing, "tier=gold") == {planned, again}
    assert tagged(pricing, "run=1") == {planned}  # a launch's own tags stay its own


def test_an_unknown_launch_plan_lists_the_registered_ones_and_suggests_the_one_meant(pricing: EventStore):
    with pytest.raises(EntityNotFoundError) as unknown:
        launch_registered(pricing, None, "pricing", "production", launch_plan="nightly")
    assert str(unknown.value) == ("no launch plan 'nightly' in pricing/production; did you mean "
                                  "'pricing_flows.nightly'? (registered: pricing_flows.flow, pricing_flows.nightly)")
    entities = EntityStore(pricing)
    for n in range(11):
        plan = LaunchPlanSpec(name=f"extra{n:02}", workflow="pricing_flows.flow", workflow_version="v1")
        entities.register("pricing", "production", "launch_plan", plan.name, "v1", plan.model_dump(mode="json"))
    with pytest.raises(EntityNotFoundError) as unknown:
        launch_registered(pricing, None, "pricing", "production", launch_plan="weekly", version="v1")
    listed = ", ".join(f"extra{n:02}" for n in range(10))
    assert str(unknown.value) == (f"no launch plan 'weekly' in pricing/production (registered: {listed} and 3 "
                                  "more); `plait register` registers it")
