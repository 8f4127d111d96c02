"""Lineage through a real ``plait server`` (SQLite and PostgreSQL): its engine worker records
the run events of what it runs, and the API answers a project's viewers, and no one else.

Projects alpha and beta run the same workflow on the same input, so their tasks write the same
content-addressed blob: one dataset, produced and read in both projects. Each project's viewer
sees only its own project's producers, readers, executions and events.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openlineage_check import check

sys.path.insert(0, str(Path(__file__).parent.parent / "server"))  # harness.py

from harness import STORES, ServerProcess, bootstrap, server_env, store_url, wait_for  # noqa: E402

FLOWS = Path(__file__).with_name("lineage_flows.py")
PROJECTS = ("alpha", "beta")


def register(server: ServerProcess, key: str, home: Path, project: str) -> None:
    source = home / f"source-{project}"
    source.mkdir()
    shutil.copy(FLOWS, source / "lineage_flows.py")
    env = {**server_env("", home), "PLAIT_SERVER": server.url, "PLAIT_API_KEY": key}
    env.pop("PLAIT_DB_URL")
    done = subprocess.run([sys.executable, "-m", "plait.cli", "register", str(source / "lineage_flows.py"),
                           "--project", project, "--domain", "development", "--version", "v1"],
                          env=env, capture_output=True, text=True, timeout=120, cwd=home)
    assert done.returncode == 0, done.stdout + done.stderr


def run(server: ServerProcess, key: str, project: str, workflow: str, **inputs: Any) -> str:
    with server.client(key) as api:
        answer = api.post(f"/projects/{project}/domains/development/executions",
                          json={"workflow": f"lineage_flows.{workflow}", "inputs": inputs})
        assert answer.status_code == 201, answer.text
        xid = str(answer.json()["execution_id"])
        wait_for(lambda: api.get(f"/executions/{xid}").json()["phase"] not in ("queued", "running"),
                 f"execution {xid} to end", servers=[server])
    return xid


@pytest.fixture(scope="module", params=STORES)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server with one engine worker; in alpha and in beta, report_flow ran on the same
    input and failing_flow ran once; a viewer of each project."""
    home = tmp_path_factory.mktemp(f"lineage-{request.param}")
    with store_url(request.param, home) as url:
        admin_key = bootstrap(url, home)
        with ServerProcess(url, home, engines=1) as server:
            keys = {}
            with server.client(admin_key) as admin:
                for project in PROJECTS:
                    assert admin.post("/projects", json={"name": project}).status_code == 201
                    user = f"viewer-{project}"
                    assert admin.post("/users", json={"name": user}).status_code == 201
                    assert admin.put(f"/projects/{project}/members/{user}", json={"role": "viewer"}).status_code == 200
                    keys[project] = admin.post(f"/users/{user}/keys", json={}).json()["key"]
            runs = {}
            for project in PROJECTS:
                register(server, admin_key, home, project)
                runs[project] = run(server, admin_key, project, "report_flow", text="shared", n=3)
                runs[f"{project}-failed"] = run(server, admin_key, project, "failing_flow", text="shared")
            yield {"server": server, "keys": keys, "runs": runs, "admin": admin_key}


def get(world: dict[str, Any], project: str, path: str, **params: Any) -> httpx.Response:
    with world["server"].client(world["keys"][project]) as api:
        return api.get(path, params=params)


def test_an_executions_lineage_is_its_run_events_start_and_end_per_attempt(world: dict[str, Any]):
    events = get(world, "alpha", f"/executions/{world['runs']['alpha']}/lineage").json()["items"]
    for event in events:
        check(event)
    assert sorted((e["job"]["name"], e["eventType"]) for e in events) == sorted(
        (f"lineage_flows.{task}", kind) for task in ("write_report", "make_frame", "summarise")
        for kind in ("START", "COMPLETE"))
    assert {e["job"]["namespace"] for e in events} == {"alpha/development"}
    failed = get(world, "alpha", f"/executions/{world['runs']['alpha-failed']}/lineage").json()["items"]
    for event in failed:
        check(event)
    assert [e["eventType"] for e in failed if e["job"]["name"] == "lineage_flows.refuse"] == [
        "START", "FAIL", "START", "FAIL"]


def test_an_aborted_attempt_ends_with_abort(world: dict[str, Any]):
    server = world["server"]
    with server.client(world["admin"]) as api:
        answer = api.post("/projects/alpha/domains/development/executions",
                          json={"workflow": "lineage_flows.lingering_flow", "inputs": {"text": "stop", "seconds": 300}})
        assert answer.status_code == 201, answer.text
        xid = answer.json()["execution_id"]

        def lingering() -> list[dict[str, Any]]:
            return [e for e in api.get(f"/executions/{xid}/lineage").json()["items"]
                    if e["job"]["name"] == "lineage_flows.linger"]

        wait_for(lingering, "the lingering attempt's START", servers=[server])
        assert api.post(f"/executions/{xid}/abort").status_code == 200
        wait_for(lambda: api.get(f"/executions/{xid}").json()["phase"] == "aborted", "the abort", servers=[server])
        events = lingering()
    for event in events:
        check(event)
    assert [e["eventType"] for e in events] == ["START", "ABORT"]
    assert events[0]["run"]["runId"] == events[1]["run"]["runId"] and len(events[1]["inputs"]) == 1


def test_a_datasets_producers_and_readers_link_to_their_executions(world: dict[str, Any]):
    produced = get(world, "alpha", f"/executions/{world['runs']['alpha']}/datasets").json()["items"]
    report = next(u for u in produced if u["node"] == "write_report")
    assert report["direction"] == "produced" and report["namespace"] == "file" and report["kind"] == "file"
    found = get(world, "alpha", "/projects/alpha/datasets/lineage", namespace="file", name=report["name"]).json()
    assert sorted((u["execution_id"], u["node"]) for u in found["producers"]) == sorted([
        (world["runs"]["alpha"], "write_report"), (world["runs"]["alpha-failed"], "write_report")])
    assert sorted((u["execution_id"], u["attempt"]) for u in found["readers"]) == sorted([  # each attempt read it
        (world["runs"]["alpha"], "summarise/1"), (world["runs"]["alpha-failed"], "refuse/1"),
        (world["runs"]["alpha-failed"], "refuse/2")])
    for use in found["producers"] + found["readers"]:
        assert use["execution_url"] == f"/api/v1/executions/{use['execution_id']}"
        assert get(world, "alpha", use["execution_url"].removeprefix("/api/v1")).status_code == 200
    listed = get(world, "alpha", "/projects/alpha/datasets").json()["items"]
    row = next(d for d in listed if d["name"] == report["name"])
    assert (row["namespace"], row["produced"], row["read"]) == ("file", 2, 3)
    assert get(world, "alpha", "/projects/alpha/datasets", domain="staging").json() == {"items": [], "next_cursor": None}


def test_a_viewer_sees_only_its_own_projects_use_of_a_shared_dataset(world: dict[str, Any]):
    runs = world["runs"]
    alpha_report = next(u for u in get(world, "alpha", f"/executions/{runs['alpha']}/datasets").json()["items"]
                        if u["node"] == "write_report")
    beta_report = next(u for u in get(world, "beta", f"/executions/{runs['beta']}/datasets").json()["items"]
                       if u["node"] == "write_report")
    assert alpha_report["name"] == beta_report["name"]  # the same bytes: one blob, one dataset
    for project, other in (("alpha", "beta"), ("beta", "alpha")):
        found = get(world, project, f"/projects/{project}/datasets/lineage", namespace="file",
                    name=alpha_report["name"]).json()
        seen = {u["execution_id"] for u in found["producers"] + found["readers"]}
        assert seen == {runs[project], runs[f"{project}-failed"]}
        assert {u["project"] for u in found["producers"] + found["readers"]} == {project}
        refused = get(world, project, f"/projects/{other}/datasets")
        assert (refused.status_code, refused.json()) == (404, {"detail": f"no project {other!r}"})
        refused = get(world, project, f"/projects/{other}/datasets/lineage", namespace="file", name=alpha_report["name"])
        assert refused.status_code == 404
        for path in (f"/executions/{runs[other]}/lineage", f"/executions/{runs[other]}/datasets"):
            refused = get(world, project, path)
            assert (refused.status_code, refused.json()) == (404, {"detail": f"no execution {runs[other]!r}"})


def every_page(world: dict[str, Any], path: str, **params: Any) -> list[Any]:
    """Every row of an API list, a page of ``params['limit']`` at a time, following next_cursor."""
    rows: list[Any] = []
    cursor = None
    while True:
        page = get(world, "alpha", path, **params, **({"cursor": cursor} if cursor else {})).json()
        items = page.get("items", page.get("producers", []) + page.get("readers", []))
        assert len(items) == params["limit"] or page["next_cursor"] is None, page
        rows += items
        if (cursor := page["next_cursor"]) is None:
            return rows


def test_the_lists_page_by_cursor_and_the_datasets_are_searched_by_name_prefix(world: dict[str, Any]):
    xid = world["runs"]["alpha"]
    events = every_page(world, f"/executions/{xid}/lineage", limit=1)
    assert events == get(world, "alpha", f"/executions/{xid}/lineage").json()["items"] and len(events) == 6
    uses = every_page(world, f"/executions/{xid}/datasets", limit=2)
    assert uses == get(world, "alpha", f"/executions/{xid}/datasets", limit=500).json()["items"] and len(uses) > 2
    listed = every_page(world, "/projects/alpha/datasets", limit=1)
    assert [d["name"] for d in listed] == sorted(d["name"] for d in listed) and len(listed) >= 2
    report = next(u for u in uses if u["node"] == "write_report")  # report_flow's, as the test above
    prefix = report["name"][:-len("report.txt")]
    assert get(world, "alpha", "/projects/alpha/datasets", q=prefix).json() == {
        "items": [d for d in listed if d["name"].startswith(prefix)], "next_cursor": None}
    found = every_page(world, "/projects/alpha/datasets/lineage", limit=1, namespace="file", name=report["name"])
    assert len(found) == 5  # two producers' and three readers' pages
    refused = get(world, "alpha", "/projects/alpha/datasets", cursor="nonsense")
    assert (refused.status_code, refused.json()["detail"]) == (
        400, "'nonsense' is not a cursor of this list; pass the next_cursor the previous page gave")
    assert get(world, "alpha", f"/executions/{xid}/lineage", limit=501).status_code == 422
