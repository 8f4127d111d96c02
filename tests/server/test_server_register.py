"""Registering workflows on a real ``plait server`` (SQLite and PostgreSQL): ``plait register``
of a package through the command line, immutability per version with a readable diff, many
registrations at once, archived versions, the active launch plan, and who may register."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from harness import STORES, ServerProcess, bootstrap, store_url
from shop_package import entity_names, write_package


@pytest.fixture(scope="module", params=STORES)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server with project ``shop``, an editor and a viewer there; each one's key."""
    home = tmp_path_factory.mktemp(f"register-{request.param}")
    with store_url(request.param, home) as url:
        admin_key = bootstrap(url, home)
        with ServerProcess(url, home) as server:
            keys = {}
            with server.client(admin_key) as admin:
                assert admin.post("/projects", json={"name": "shop"}).status_code == 201
                for user in ("editor", "viewer"):
                    assert admin.post("/users", json={"name": user}).status_code == 201
                    keys[user] = admin.post(f"/users/{user}/keys", json={}).json()["key"]
                    assert admin.put(f"/projects/shop/members/{user}", json={"role": user}).status_code == 200
            yield {"server": server, "keys": keys, "url": url, "home": home}


def plait(world: dict[str, Any], key: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    env.update(PLAIT_SERVER=world["server"].url, PLAIT_API_KEY=key, PLAIT_HOME=str(world["home"] / "client"))
    return subprocess.run([sys.executable, "-m", "plait.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def register(world: dict[str, Any], path: Path, version: str, *extra: str,
             user: str = "editor") -> subprocess.CompletedProcess[str]:
    return plait(world, world["keys"][user], "register", str(path), "--project", "shop", "--domain", "development",
                 "--version", version, *extra)


def statuses(stdout: str) -> dict[tuple[str, str], str]:
    """(kind, name) -> created|unchanged, from what `plait register` printed."""
    found = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in ("created", "unchanged"):
            found[(parts[1], parts[2].rsplit("@", 1)[0])] = parts[0]
    return found


def api(world: dict[str, Any], user: str = "viewer") -> httpx.Client:
    return world["server"].client(world["keys"][user])


BASE = "/projects/shop/domains/development"


def test_plait_register_creates_the_package_and_again_leaves_it_unchanged(world, tmp_path: Path):
    path = write_package(tmp_path, "shop_a")
    first = register(world, path, "v1")
    assert first.returncode == 0, first.stderr
    assert statuses(first.stdout) == {key: "created" for key in entity_names("shop_a")}
    again = register(world, path, "v1")
    assert again.returncode == 0, again.stderr
    assert statuses(again.stdout) == {key: "unchanged" for key in entity_names("shop_a")}
    assert "0 created, 4 unchanged in shop/development" in again.stdout
    with api(world) as viewer:
        assert viewer.get(f"{BASE}/entities/task").json() == ["shop_a.tasks.price"]
        assert [v["version"] for v in viewer.get(f"{BASE}/entities/workflow/shop_a.flows.quote").json()] == ["v1"]
        workflow = viewer.get(f"{BASE}/entities/workflow/shop_a.flows.quote/v1").json()["body"]
        plan = viewer.get(f"{BASE}/entities/launch_plan/shop_a.flows.hourly/v1").json()["body"]
    code = workflow["code"]
    archive = world["home"] / "blobs" / "code" / f"{code['digest']}.tar.gz"  # the server's blob store
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == code["digest"]
    assert code["root"] == "."  # task files are relative to the archive
    assert workflow["spec"]["tasks"]["shop_a.tasks.price"]["retries"] == 1
    assert (plan["workflow"], plan["workflow_version"], plan["default_inputs"]) == ("shop_a.flows.quote", "v1",
                                                                                   {"amount": 10})
    assert plan["schedule"]["cron"] == "0 * * * *" and plan["schedule"]["timezone"] == "Europe/Paris"


def test_a_changed_task_under_the_same_version_is_refused_with_a_diff_and_nothing_of_the_set_is_registered(
        world, tmp_path: Path):
    path = write_package(tmp_path, "shop_b")
    assert register(world, path, "v1").returncode == 0
    tasks = path / "tasks.py"
    tasks.write_text(tasks.read_text().replace("retries=1", "retries=4"))
    flows = path / "flows.py"
    flows.write_text(flows.read_text() + "\n\n@plait.workflow\ndef extra(amount: int) -> float:\n"
                                         "    return price(amount=amount)\n")
    refused = register(world, path, "v1")
    assert refused.returncode == 2
    assert "task 'shop_b.tasks.price' version 'v1' in shop/development is already registered" in refused.stderr
    assert '-  "retries": 1,\n+  "retries": 4,' in refused.stderr  # the diff names the changed field
    assert "Nothing was registered" in refused.stderr
    with api(world) as viewer:
        assert viewer.get(f"{BASE}/entities/workflow/shop_b.flows.extra").json() == []
        assert viewer.get(f"{BASE}/entities/launch_plan/shop_b.flows.extra/v1").status_code == 404
        kept = viewer.get(f"{BASE}/entities/task/shop_b.tasks.price/v1").json()["body"]
    assert kept["retries"] == 1
    assert register(world, path, "v2").returncode == 0  # under a new version it is welcome


def test_a_hundred_identical_registrations_at_once_leave_one_row_per_entity(world, tmp_path: Path):
    from plait.service.register import build_registration, collect

    path = write_package(tmp_path, "shop_c")
    with api(world, "editor") as editor:
        def upload(packed: Any) -> str:
            answer = editor.put(f"{BASE}/code/{packed.digest}", content=packed.data,
                                headers={"Content-Type": "application/octet-stream"})
            assert answer.status_code == 200, answer.text
            return str(answer.json()["uri"])

        registration = build_registration(collect(path), "v1", ship=upload)
    body = {"version": "v1", "entities": [{"kind": e.kind, "name": e.name, "body": e.body}
                                          for e in registration.entities]}
    answers: list[httpx.Response] = []
    start = threading.Barrier(100)

    def send() -> None:
        with api(world, "editor") as client:
            start.wait()
            answers.append(client.post(f"{BASE}/registrations", json=body, timeout=120))

    threads = [threading.Thread(target=send) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200] * 100, {a.status_code: a.text for a in answers}
    created = [(e["kind"], e["name"]) for a in answers for e in a.json()["entities"] if e["status"] == "created"]
    assert sorted(created) == sorted(entity_names("shop_c"))  # each entity created by exactly one of them
    engine = sa.create_engine(world["url"])
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT kind, name, version FROM entities WHERE project = 'shop' "
                                    "AND name LIKE 'shop_c.%'")).all()
    engine.dispose()
    assert sorted((kind, name) for kind, name, _ in rows) == sorted(entity_names("shop_c"))


def test_an_archived_version_is_hidden_from_the_list_and_still_readable(world, tmp_path: Path):
    path = write_package(tmp_path, "shop_d")
    for version in ("v1", "v2"):
        assert register(world, path, version).returncode == 0
    versions = f"{BASE}/entities/workflow/shop_d.flows.quote"
    with api(world, "viewer") as viewer:
        assert viewer.post(f"{versions}/v1/archive").status_code == 403
    with api(world, "editor") as editor:
        archived = editor.post(f"{versions}/v1/archive")
        assert archived.status_code == 200 and archived.json()["archived"] is True
    with api(world) as viewer:
        assert [v["version"] for v in viewer.get(versions).json()] == ["v2"]
        assert [(v["version"], v["archived"]) for v in viewer.get(versions, params={"archived": True}).json()] == [
            ("v1", True), ("v2", False)]
        old = viewer.get(f"{versions}/v1")
        assert old.status_code == 200 and old.json()["body"]["spec"]["name"] == "shop_d.flows.quote"
        assert viewer.get(f"{versions}/v9").status_code == 404


def test_activating_a_launch_plan_version_switches_the_active_one(world, tmp_path: Path):
    path = write_package(tmp_path, "shop_e")
    plan = f"{BASE}/launch_plans/shop_e.flows.hourly/active"
    with api(world) as viewer:
        assert viewer.get(plan).status_code == 404  # nothing registered, nothing active
    first = register(world, path, "v1", "--activate")
    assert first.returncode == 0 and "activated  launch_plan shop_e.flows.hourly@v1" in first.stdout
    assert register(world, path, "v2").returncode == 0
    with api(world) as viewer:
        assert viewer.get(plan).json()["version"] == "v1"  # registering v2 did not activate it
        assert viewer.put(plan, json={"version": "v2"}).status_code == 403
    with api(world, "editor") as editor:
        switched = editor.put(plan, json={"version": "v2"})
        assert switched.status_code == 200 and switched.json()["version"] == "v2"
        assert editor.get(plan).json()["version"] == "v2"
        assert editor.put(plan, json={"version": "v7"}).status_code == 404
        refused = editor.post(f"{BASE}/entities/launch_plan/shop_e.flows.hourly/v2/archive")
        assert refused.status_code == 400 and "is the active one" in refused.json()["detail"]
        deactivated = editor.delete(plan)
        assert deactivated.status_code == 200 and deactivated.json()["version"] == "v2"
        assert editor.get(plan).status_code == 404


def test_a_viewer_cannot_register_or_upload_code(world, tmp_path: Path):
    path = write_package(tmp_path, "shop_f")
    refused = register(world, path, "v1", user="viewer")
    assert refused.returncode != 0
    assert "is viewer in project 'shop'; this needs editor" in refused.stderr
    with api(world, "viewer") as viewer:
        assert viewer.get(f"{BASE}/entities/task").status_code == 200
        assert viewer.post(f"{BASE}/registrations", json={"version": "v1", "entities": []}).status_code == 403
        digest = hashlib.sha256(b"x").hexdigest()
        assert viewer.put(f"{BASE}/code/{digest}", content=b"x").status_code == 403
        assert ("task", "shop_f.tasks.price") not in {("task", n) for n in viewer.get(f"{BASE}/entities/task").json()}


def test_a_code_archive_is_refused_under_a_digest_that_is_not_its_own(world):
    data = b"not really a tarball"
    digest = hashlib.sha256(data).hexdigest()
    octet = {"Content-Type": "application/octet-stream"}
    with api(world, "editor") as editor:
        wrong = editor.put(f"{BASE}/code/{hashlib.sha256(b'other').hexdigest()}", content=data, headers=octet)
        assert wrong.status_code == 400 and f"the archive's SHA-256 is {digest}" in wrong.json()["detail"]
        first = editor.put(f"{BASE}/code/{digest}", content=data, headers=octet)
        assert first.status_code == 200 and first.json()["created"] is True
        assert editor.put(f"{BASE}/code/{digest}", content=data, headers=octet).json()["created"] is False
    assert (world["home"] / "blobs" / "code" / f"{digest}.tar.gz").read_bytes() == data


def test_a_workflow_pointing_at_code_never_uploaded_is_refused(world, tmp_path: Path):
    from plait.service.register import build_registration, collect

    path = write_package(tmp_path, "shop_g")
    registration = build_registration(collect(path), "v1", ship=lambda packed: "file:///elsewhere/code.tar.gz")
    body = {"version": "v1", "entities": [{"kind": e.kind, "name": e.name, "body": e.body}
                                          for e in registration.entities]}
    with api(world, "editor") as editor:
        refused = editor.post(f"{BASE}/registrations", json=body)
        assert refused.status_code == 400 and "is not on this server; upload it first" in refused.json()["detail"]
        assert editor.get(f"{BASE}/entities/task/shop_g.tasks.price").json() == []
