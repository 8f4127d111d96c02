"""Reading executions from a real ``plait server`` (SQLite and PostgreSQL): the filtered, cursor-paged
list of a tenant; one execution, its events (JSON, and server-sent events that follow it live
until it ends), an attempt's log and the pools, each only for callers with a role in its project
(404 ``no execution`` otherwise); the guard that keeps a finished execution, node or attempt
finished; and the command line speaking to the server, printing what it prints locally.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import STORES, ServerProcess, bootstrap, server_env, store_url
from plait.client import Client
from plait.model.events import Event
from plait.model.spec import WorkflowSpec
from plait.model.status import Phase
from plait.storage.events import EventStore, Origin
from plait.storage.queue import ExecutionQueue

SPECS = {name: WorkflowSpec(name=name).with_version() for name in ("flows.prices", "flows.maps")}
PHASES = ["queued", "running", "succeeded", "failed"]


def make_executions(store: EventStore, project: str, count: int, start: int = 0, prefix: str = "x") -> list[dict[str, Any]]:
    """``count`` queued executions of ``project``/development, each with a workflow, launch
    plan, launcher, tags (nightly, gpu, both or none) and a phase, cycling through them; their rows."""
    queue = ExecutionQueue(store)
    ids = []
    for i in range(start, start + count):
        xid = f"{prefix}{'ab'[i % 2]}-{project}-{i:04d}"
        tags = (("nightly",) if i % 2 == 0 else ()) + (("gpu",) if i % 3 == 0 else ())
        queue.enqueue(xid, SPECS["flows.prices" if i % 2 else "flows.maps"], {}, {}, project, "development",
                      origin=Origin(launch_plan=f"lp{i % 3}", launched_by=f"user{i % 4}", tags=tags))
        if PHASES[i % 4] != "queued":
            store.set_execution_phase(xid, PHASES[i % 4])
        ids.append(xid)
    rows = [store.execution(x) for x in ids]
    for row, i in zip(rows, range(start, start + count)):
        row["tags"] = ({"nightly"} if i % 2 == 0 else set()) | ({"gpu"} if i % 3 == 0 else set())
    return rows


def newest_first(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in sorted(rows, key=lambda r: (r["created"], r["id"]), reverse=True)]


@pytest.fixture(scope="module", params=STORES)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server over a store holding executions in projects alpha and beta; a viewer of each."""
    home = tmp_path_factory.mktemp(f"executions-{request.param}")
    with store_url(request.param, home) as url:
        admin_key = bootstrap(url, home)
        with ServerProcess(url, home) as server:
            keys = {"admin": admin_key}
            with server.client(admin_key) as admin:
                for project in ("alpha", "beta"):
                    assert admin.post("/projects", json={"name": project}).status_code == 201
                    user = f"viewer-{project}"
                    assert admin.post("/users", json={"name": user}).status_code == 201
                    keys[user] = admin.post(f"/users/{user}/keys", json={}).json()["key"]
                    assert admin.put(f"/projects/{project}/members/{user}", json={"role": "viewer"}).status_code == 200
            store = EventStore(url)
            rows = {p: make_executions(store, p, 40) for p in ("alpha", "beta")}
            yield {"server": server, "keys": keys, "url": url, "store": store, "rows": rows, "home": home}
            store.close()


def page_through(client: httpx.Client, project: str, limit: int = 7, between: Any = None,
                 **params: Any) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        answer = client.get(f"/projects/{project}/domains/development/executions",
                            params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert len(page["items"]) <= limit
        seen += [r["id"] for r in page["items"]]
        if page["next_cursor"] is None:
            return seen
        cursor = page["next_cursor"]
        if between is not None:
            between()


def test_each_filter_lists_exactly_the_matching_executions(world: dict[str, Any]):
    rows = world["rows"]["alpha"]
    mid = sorted(r["created"] for r in rows)[len(rows) // 2]
    cases: list[tuple[dict[str, Any], Any]] = [
        ({}, lambda r: True),
        ({"phase": "failed"}, lambda r: r["phase"] == "failed"),
        ({"workflow": "flows.prices"}, lambda r: r["workflow"] == "flows.prices"),
        ({"launch_plan": "lp1"}, lambda r: r["launch_plan"] == "lp1"),
        ({"launched_by": "user2"}, lambda r: r["launched_by"] == "user2"),
        ({"prefix": "xb-"}, lambda r: r["id"].startswith("xb-")),
        ({"tag": "gpu"}, lambda r: "gpu" in r["tags"]),
        ({"tag": ["gpu", "nightly"]}, lambda r: {"gpu", "nightly"} <= r["tags"]),
        ({"tag": "never"}, lambda r: False),
        ({"created_after": mid}, lambda r: r["created"] >= mid),
        ({"created_before": mid}, lambda r: r["created"] < mid),
        ({"workflow": "flows.maps", "phase": "running", "tag": "gpu"},
         lambda r: r["workflow"] == "flows.maps" and r["phase"] == "running" and "gpu" in r["tags"]),
        ({"launch_plan": "lp0", "launched_by": "user0", "created_after": mid, "prefix": "xa"},
         lambda r: r["launch_plan"] == "lp0" and r["launched_by"] == "user0" and r["created"] >= mid
         and r["id"].startswith("xa")),
    ]
    with world["server"].client(world["keys"]["viewer-alpha"]) as client:
        for params, keep in cases:
            expected = newest_first([r for r in rows if keep(r)])
            assert page_through(client, "alpha", **params) == expected, params
    assert all(len(newest_first([r for r in rows if keep(r)])) < len(rows) for params, keep in cases[1:])


def test_bad_filters_and_cursors_are_refused_naming_what_is_wrong(world: dict[str, Any]):
    with world["server"].client(world["keys"]["viewer-alpha"]) as client:
        path = "/projects/alpha/domains/development/executions"
        for params, says in [({"cursor": "nonsense"}, "is not a cursor"),
                             ({"phase": "exploded"}, "phase 'exploded' is not a phase"),
                             ({"created_after": 20, "created_before": 10}, "nothing is in that range"),
                             ({"limit": 0}, "limit")]:
            answer = client.get(path, params=params)
            assert answer.status_code in (400, 422), (params, answer.text)
            assert says in answer.text, (params, answer.text)


def test_paging_by_cursor_sees_every_row_once_while_new_ones_arrive(world: dict[str, Any]):
    store, before = world["store"], world["rows"]["alpha"]
    added: list[dict[str, Any]] = []

    def insert_newer() -> None:
        added.extend(make_executions(store, "alpha", 2, start=1000 + len(added), prefix="new"))

    with world["server"].client(world["keys"]["viewer-alpha"]) as client:
        seen = page_through(client, "alpha", limit=6, between=insert_newer, prefix="x")
        assert len(added) >= 10
        assert seen == newest_first(before)  # newer rows come before the cursor: none shifts the pages
        everything = page_through(client, "alpha", limit=6, prefix="new")
    assert sorted(everything) == sorted(r["id"] for r in added)


def test_a_viewer_of_one_project_never_sees_anothers_executions(world: dict[str, Any]):
    server, theirs, mine = world["server"], world["rows"]["beta"][0]["id"], world["rows"]["alpha"][0]["id"]
    with server.client(world["keys"]["viewer-alpha"]) as client:
        assert client.get(f"/executions/{mine}").status_code == 200
        assert client.get(f"/executions/{mine}/events").status_code == 200
        assert client.get("/projects/beta/domains/development/executions").status_code == 404
        for path in (f"/executions/{theirs}", f"/executions/{theirs}/events",
                     f"/executions/{theirs}/events?stream=1", f"/executions/{theirs}/logs/n0"):
            answer = client.get(path)
            assert answer.status_code == 404, (path, answer.text)
            assert answer.json()["detail"] == f"no execution {theirs!r}", path
        # the answer for another project's execution is the one for an id that does not exist
        assert client.get("/executions/x-nothing").json() == {"detail": "no execution 'x-nothing'"}
    with server.client(world["keys"]["viewer-beta"]) as client:
        assert client.get(f"/executions/{theirs}").status_code == 200


def running_execution(store: EventStore, project: str, xid: str) -> None:
    ExecutionQueue(store).enqueue(xid, SPECS["flows.maps"], {"n": 3}, {}, project, "development")
    store.set_execution_phase(xid, "running")
    store.append(Event(xid, "execution", "", Phase.RUNNING, {"workflow": "flows.maps", "inputs": {"n": 3}}))
    store.flush()


def test_an_execution_summary_has_its_nodes_phases_and_outputs_once_done(world: dict[str, Any], tmp_path: Path):
    store, xid = world["store"], f"sum-{time.time_ns()}"
    running_execution(store, "alpha", xid)
    log = tmp_path / "stdout.log"
    log.write_text("hello from n0\n")
    store.append(Event(xid, "node", "n0", Phase.RUNNING))
    store.append(Event(xid, "attempt", "n0/1", Phase.RUNNING, {"node": "n0", "attempt": 1}))
    store.flush()
    with world["server"].client(world["keys"]["viewer-alpha"]) as client:
        found = client.get(f"/executions/{xid}").json()
        assert (found["phase"], found["outputs"], [(n["node"], n["phase"]) for n in found["nodes"]]) == \
            ("running", None, [("n0", "running")])
        store.append(Event(xid, "attempt", "n0/1", Phase.SUCCEEDED,
                           {"node": "n0", "attempt": 1, "logs": {"stdout": str(log)}}))
        store.append(Event(xid, "node", "n0", Phase.SUCCEEDED, {"outputs": {"o0": 3}}))
        store.append(Event(xid, "execution", "", Phase.SUCCEEDED, {"outputs": {"o0": 3}}))
        store.flush()
        found = client.get(f"/executions/{xid}").json()
        assert (found["phase"], found["outputs"], found["inputs"]) == ("succeeded", {"o0": 3}, {"n": 3})
        assert found["nodes"][0]["attempts"][0]["log_links"] == {"stdout": str(log)}
        logs = client.get(f"/executions/{xid}/logs/n0", params={"attempt": 1}).json()
        assert [(p["stream"], p["text"]) for p in logs["parts"]] == [("stdout", "hello from n0\n")]


def test_server_sent_events_follow_a_running_execution_live_and_end_at_its_end(world: dict[str, Any]):
    store, xid = world["store"], f"live-{time.time_ns()}"
    running_execution(store, "alpha", xid)
    got: list[tuple[str, str]] = []
    with Client(world["server"].url, world["keys"]["viewer-alpha"]) as client:
        stream = client.stream(f"/executions/{xid}/events", stream=1)
        got.append(next(stream))
        assert got[0][0] == "execution"
        # each event appended now arrives on the open stream, before the next is written
        for entity in ("a", "b"):
            store.append(Event(xid, "node", entity, Phase.RUNNING))
            store.flush()
            got.append(next(stream))
            assert got[-1][0] == "node" and f'"entity":"{entity}"' in got[-1][1]
        store.append(Event(xid, "execution", "", Phase.FAILED, {"error": "b broke"}))
        store.flush()
        rest = list(stream)  # the stream ends by itself after the execution's end
        assert [name for name, _ in rest] == ["execution", "end"]
    first_seq = int(httpx.get(world["server"].url + f"/api/v1/executions/{xid}/events",
                              headers={"Authorization": f"Bearer {world['keys']['viewer-alpha']}"}).json()[0]["seq"])
    # resuming after the first event (Last-Event-ID) gives the rest, then the end
    with httpx.stream("GET", world["server"].url + f"/api/v1/executions/{xid}/events", timeout=30,
                      headers={"Authorization": f"Bearer {world['keys']['viewer-alpha']}",
                               "Accept": "text/event-stream", "Last-Event-ID": str(first_seq)}) as answer:
        names = [line[6:].strip() for line in answer.iter_lines() if line.startswith("event:")]
    assert names == ["node", "node", "execution", "end"]


def test_a_stream_resumed_after_a_finished_executions_last_event_ends_at_once(world: dict[str, Any]):
    """A client that reconnects (Last-Event-ID) just after the final event is told ``end``, not
    kept waiting for events that will never come."""
    store, xid = world["store"], f"over-{time.time_ns()}"
    running_execution(store, "alpha", xid)
    store.append(Event(xid, "execution", "", Phase.SUCCEEDED, {"outputs": {}}))
    store.flush()
    store.set_execution_phase(xid, "succeeded")  # as the engine does once its last events are written
    auth = {"Authorization": f"Bearer {world['keys']['viewer-alpha']}"}
    last = httpx.get(world["server"].url + f"/api/v1/executions/{xid}/events", headers=auth).json()[-1]["seq"]
    with httpx.stream("GET", world["server"].url + f"/api/v1/executions/{xid}/events", timeout=10,
                      headers={**auth, "Accept": "text/event-stream", "Last-Event-ID": str(last)}) as answer:
        names = [line[6:].strip() for line in answer.iter_lines() if line.startswith("event:")]
    assert names == ["end"]


def test_many_open_streams_leave_the_rest_of_the_api_answering(world: dict[str, Any]):
    """Followers wait on the event loop, not in the server's threads (about 40): with 80 streams
    open on a running execution, other requests are still answered (a read deadline of 5 s)."""
    store, xid = world["store"], f"busy-{time.time_ns()}"
    running_execution(store, "alpha", xid)
    auth = {"Authorization": f"Bearer {world['keys']['viewer-alpha']}"}
    with httpx.Client(base_url=world["server"].url, headers=auth, timeout=30,
                      limits=httpx.Limits(max_connections=100)) as followers, contextlib.ExitStack() as open_streams:
        for _ in range(80):
            answer = open_streams.enter_context(followers.stream("GET", f"/api/v1/executions/{xid}/events?stream=1"))
            assert answer.status_code == 200
        for _ in range(3):
            assert httpx.get(world["server"].url + "/api/v1/me", headers=auth, timeout=5).status_code == 200
        store.append(Event(xid, "execution", "", Phase.ABORTED, {"error": "enough"}))
        store.flush()


def test_pools_show_each_tenants_holders_only_to_those_who_may_view_its_project(world: dict[str, Any]):
    store = world["store"]
    for project in ("alpha", "beta"):
        xid = f"pool-{project}-{time.time_ns()}"
        running_execution(store, project, xid)
        store.append(Event(xid, "attempt", "n0/1", Phase.RUNNING, {
            "node": "n0", "attempt": 1, "pools": {"warehouse": 2}, "tenant": f"{project}/development"}))
    store.flush()

    def holders(key: str) -> dict[str, int]:
        with world["server"].client(key) as client:
            pools = {p["name"]: p for p in client.get("/pools").json()["pools"]}
        return pools["warehouse"]["holders"]

    assert holders(world["keys"]["admin"]) == {"alpha/development": 2, "beta/development": 2}
    assert holders(world["keys"]["viewer-alpha"]) == {"alpha/development": 2}
    assert holders(world["keys"]["viewer-beta"]) == {"beta/development": 2}


# -- the event guard ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind,entity,data", [("execution", "", {}), ("node", "n0", {}),
                                              ("attempt", "n0/1", {"node": "n0", "attempt": 1})])
def test_an_event_moving_a_finished_entity_is_refused_even_from_another_process(
        world: dict[str, Any], kind: str, entity: Any, data: dict[str, Any]):
    store, xid = world["store"], f"guard-{kind}-{time.time_ns()}"
    running_execution(store, "alpha", xid)
    store.append(Event(xid, kind, entity, Phase.RUNNING, data))  # type: ignore[arg-type]
    store.append(Event(xid, kind, entity, Phase.SUCCEEDED, data))  # type: ignore[arg-type]
    store.flush()
    late = EventStore(world["url"])  # an engine that lost its claim, in its own process and connection
    try:
        late.append(Event(xid, kind, entity, Phase.FAILED, {**data, "error": "late"}))  # type: ignore[arg-type]
        late.append(Event(xid, kind, entity, Phase.RUNNING, data))  # type: ignore[arg-type]
        late.append(Event(xid, "node", "other", Phase.RUNNING))  # unrelated: still written
        late.flush()
        refused = [(r.entity, r.phase, r.ended) for r in late.refused]
    finally:
        late.close()
    assert (entity, "failed", "succeeded") in refused
    phases = [(e.kind, e.entity, e.phase.value) for e in store.events(xid)]
    assert (kind, entity, "failed") not in phases
    assert [p for k, e, p in phases if (k, e) == (kind, entity)][-1] == "succeeded"
    assert ("node", "other", "running") in phases
    # ... a later run (a resume) starts the entity afresh
    store.append(Event(xid, kind, entity, Phase.RUNNING, data, run=1))  # type: ignore[arg-type]
    store.flush()
    assert sum(1 for e in store.events(xid) if (e.kind, e.entity, e.run) == (kind, entity, 1)) == 1


def test_within_one_batch_an_event_after_the_end_is_refused_and_a_duplicate_is_a_no_op(world: dict[str, Any]):
    store, xid = world["store"], f"batch-{time.time_ns()}"
    running_execution(store, "alpha", xid)
    for phase in (Phase.RUNNING, Phase.SUCCEEDED, Phase.RUNNING, Phase.SUCCEEDED, Phase.ABORTED):
        store.append(Event(xid, "node", "n0", phase))
    store.flush()
    store.append(Event(xid, "node", "n0", Phase.SUCCEEDED))  # a duplicate, in a later batch
    store.flush()
    assert [e.phase.value for e in store.events(xid) if e.entity == "n0"] == ["running", "succeeded"]
    with world["server"].client(world["keys"]["viewer-alpha"]) as client:
        nodes = client.get(f"/executions/{xid}").json()["nodes"]
    assert [(n["node"], n["phase"]) for n in nodes] == [("n0", "succeeded")]


# -- the command line, local and remote ---------------------------------------------------------


def plait(world: dict[str, Any], *args: str, remote: bool, key: str = "viewer-alpha") -> str:
    env = server_env(world["url"], world["home"], COLUMNS="200")
    if remote:
        env.update(PLAIT_SERVER=world["server"].url, PLAIT_API_KEY=world["keys"][key],
                   PLAIT_DB_URL="sqlite:////nonexistent/never-read.db")
    done = subprocess.run([sys.executable, "-m", "plait.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_cli_prints_the_same_against_a_server_as_from_the_store(world: dict[str, Any]):
    store, xid = world["store"], f"cli-{time.time_ns()}"
    running_execution(store, "alpha", xid)
    store.append(Event(xid, "node", "n0", Phase.RUNNING))
    store.append(Event(xid, "node", "n0", Phase.FAILED, {"error": "n0 broke"}))
    store.append(Event(xid, "execution", "", Phase.FAILED, {"error": "n0 broke", "failed_node": "n0"}))
    store.flush()
    for args in (["executions", "list", "--project", "alpha", "--domain", "development", "--limit", "15",
                  "--tag", "gpu"],
                 ["executions", "list", "--project", "alpha", "--domain", "development", "--phase", "failed"],
                 ["executions", "show", xid], ["executions", "events", xid, "--json"]):
        local, remote = plait(world, *args, remote=False), plait(world, *args, remote=True)
        assert remote == local, args
        assert "alpha/development" in remote or "n0 broke" in remote, remote


def test_the_cli_against_a_server_tells_a_viewer_of_another_project_no_execution(world: dict[str, Any]):
    theirs = world["rows"]["beta"][0]["id"]
    env = {**server_env(world["url"], world["home"]), "PLAIT_SERVER": world["server"].url,
           "PLAIT_API_KEY": world["keys"]["viewer-alpha"]}
    done = subprocess.run([sys.executable, "-m", "plait.cli", "executions", "show", theirs], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and f"no execution {theirs!r}" in done.stderr


@pytest.mark.parametrize("remote", [True, False], ids=["server", "local"])
def test_show_follow_prints_events_live_until_the_end(world: dict[str, Any], remote: bool):
    store, xid = world["store"], f"follow-{time.time_ns()}"
    running_execution(store, "alpha", xid)
    env = server_env(world["url"], world["home"], COLUMNS="200")
    server: list[str] = []
    if remote:  # then the command has no store to read: only the server's stream
        env.pop("PLAIT_DB_URL")
        env["PLAIT_API_KEY"] = world["keys"]["viewer-alpha"]
        server = ["--server", world["server"].url]
    proc = subprocess.Popen([sys.executable, "-m", "plait.cli", "executions", *server, "show", xid, "--follow"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not any(" execution " in line for line in lines):  # the stream is open and delivering
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()  # type: ignore[union-attr]
            time.sleep(0.05)
        assert proc.poll() is None  # still following: the execution has not ended
        store.append(Event(xid, "node", "n0", Phase.RUNNING))
        store.append(Event(xid, "execution", "", Phase.SUCCEEDED, {"outputs": {"o0": 1}}))
        store.flush()
        assert proc.wait(30) == 0, proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(10)
    text = "".join(lines)
    assert "node      running" in text and "execution succeeded" in text
    assert f"{xid}  flows.maps" in text and 'outputs: {"o0": 1}' in text


def test_pools_prints_the_same_against_a_server_as_from_the_store(world: dict[str, Any]):
    local = plait(world, "pools", remote=False)
    remote = plait(world, "pools", remote=True, key="admin")
    # the same table; the last line says whose store the tokens were read from
    assert remote.splitlines()[:-1] == local.splitlines()[:-1]
    assert local.splitlines()[-1] == "tokens: running executions in the local store"
    assert remote.splitlines()[-1] == "tokens: running executions in the server's store"
    assert "alpha/development" in remote and "beta/development" in remote  # the admin sees every tenant
