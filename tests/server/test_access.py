"""Authentication and per-project authorization of a real ``plait server`` (SQLite and PostgreSQL).

Every route in the server's own OpenAPI description refuses a request without a usable key
(health excepted); each route says which role it needs (``x-plait-role``), and for two
projects and every role the answers follow the rule: enough role, served; too little, 403; no
role in the project, the very answer a project that does not exist gets (404), so names do not
leak. Keys are shown once, stored as hashes, revocable and may expire.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import plait
import pytest
import sqlalchemy as sa
from harness import STORES, ServerProcess, bootstrap, server_env, store_url
from plait.storage.access import ROLES, api_keys
from plait.storage.events import EventStore
from plait.storage.queue import ExecutionQueue

ROLE_USERS = {role: f"{role}-a" for role in ROLES}  # each with that role in alpha, none in beta


@plait.task
def one() -> int:
    return 1


@plait.workflow
def tiny() -> int:
    return one()


@pytest.fixture(scope="module", params=STORES)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server with projects alpha and beta, a user per role in alpha, one in beta only, and
    a user with no role anywhere; each user's key."""
    home = tmp_path_factory.mktemp(f"access-{request.param}")
    with store_url(request.param, home) as url:
        admin_key = bootstrap(url, home)
        with ServerProcess(url, home) as server:
            keys = {"admin": admin_key}
            with server.client(admin_key) as admin:
                for project in ("alpha", "beta"):
                    assert admin.post("/projects", json={"name": project}).status_code == 201
                for role, user in [*ROLE_USERS.items(), ("viewer", "beta-only"), (None, "nobody")]:
                    assert admin.post("/users", json={"name": user}).status_code == 201
                    keys[user] = admin.post(f"/users/{user}/keys", json={}).json()["key"]
                    if role is not None:
                        project = "beta" if user == "beta-only" else "alpha"
                        assert admin.put(f"/projects/{project}/members/{user}", json={"role": role}).status_code == 200
                spec = httpx.get(server.url + "/openapi.json").json()
            store = EventStore(url)  # an execution in each project (the server runs none: no engines)
            for project in ("alpha", "beta"):
                ExecutionQueue(store).enqueue(f"x-{project}-1", tiny.spec, {}, {}, project, "development")
            store.close()
            yield {"server": server, "keys": keys, "spec": spec, "url": url}


def routes(spec: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(method, path, role needed) for every operation in the OpenAPI description."""
    return [(method.upper(), path, op["x-plait-role"]) for path, ops in spec["paths"].items()
            for method, op in ops.items()]


SAMPLES = {"domain": "development", "user": "nobody", "key_id": "0123456789ab", "name": "wf", "version": "v1",
           "kind": "workflow", "execution_id": "x0", "node": "n0", "launch_plan": "lp"}


def fill(path: str, project: str) -> str:
    """``path`` with its parameters filled in, in ``project`` (the execution is that project's)."""
    def value(name: str) -> str:
        return {"project": project, "execution_id": f"x-{project}-1"}.get(name) or SAMPLES.get(name, "x")

    return re.sub(r"\{(\w+)\}", lambda m: value(m[1]), path)


def call(server: ServerProcess, key: str | None, method: str, path: str) -> httpx.Response:
    with server.client(key) as client:
        return client.request(method, path.removeprefix("/api/v1"),
                              json={} if method in ("POST", "PUT", "PATCH") else None)


HUB_READS = [("GET", "/api/v1/hub/bundles"), ("GET", "/api/v1/hub/bundles/{name}/{version}"),
             ("GET", "/api/v1/hub/bundles/{name}/{version}/files/{file}")]
"""A hub is read without a key: it holds only what an editor published (tests/hub)."""


def test_every_route_but_health_refuses_a_request_without_a_usable_key(world: dict[str, Any]):
    server, spec = world["server"], world["spec"]
    found = routes(spec)
    assert [(m, p) for m, p, role in found if role == "public"] == [("GET", "/health"), *HUB_READS]
    assert len(found) >= 12
    bad_keys = [None, "plait_nothere_xyz", world["keys"]["admin"][:-2] + "zz", "Basic abc"]
    for method, path, _ in found:
        if path == "/health" or (method, path) in HUB_READS:
            continue
        for key in bad_keys:
            answer = call(server, key, method, fill(path, "alpha"))
            assert answer.status_code == 401, (method, path, key, answer.status_code, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"
    assert httpx.get(server.url + "/health").json() == {"status": "ok"}


def test_each_role_is_served_refused_or_told_nothing_exists_across_two_projects(world: dict[str, Any]):
    server, keys = world["server"], world["keys"]
    project_routes = [(m, p, r) for m, p, r in routes(world["spec"]) if "{project}" in p]
    assert {r for _, _, r in project_routes} >= {"viewer", "admin"}
    checked = 0
    for method, path, needed in project_routes:
        ghost = call(server, keys["viewer-a"], method, fill(path, "ghost"))
        assert ghost.status_code == 404 and ghost.json() == {"detail": "no project 'ghost'"}, (method, path)
        for role, user in ROLE_USERS.items():
            answer = call(server, keys[user], method, fill(path, "alpha"))
            if ROLES.index(role) >= ROLES.index(needed):
                assert answer.status_code not in (401, 403), (method, path, role, answer.text)
                assert answer.json() != {"detail": "no project 'alpha'"}, (method, path, role)
            else:
                assert answer.status_code == 403, (method, path, role, answer.status_code, answer.text)
                assert f"this needs {needed}" in answer.json()["detail"]
            # beta: no role there, so exactly what a project that does not exist answers
            other = call(server, keys[user], method, fill(path, "beta"))
            assert (other.status_code, other.json()) == (404, {"detail": "no project 'beta'"}), (method, path, role)
            checked += 1
        nobody = call(server, keys["nobody"], method, fill(path, "alpha"))
        assert (nobody.status_code, nobody.json()) == (404, {"detail": "no project 'alpha'"})
    assert checked >= 4 * len(project_routes)


def test_each_role_on_an_execution_is_served_refused_or_told_it_does_not_exist(world: dict[str, Any]):
    """Routes addressed by an execution's id: the caller's role in the execution's project
    decides, and with none there the answer is the one an id that does not exist gets."""
    server, keys = world["server"], world["keys"]
    execution_routes = [(m, p, r) for m, p, r in routes(world["spec"]) if "{execution_id}" in p]
    assert {r for _, _, r in execution_routes} == {"viewer", "launcher"}
    assert len(execution_routes) >= 6
    for method, path, needed in execution_routes:
        ghost = call(server, keys["viewer-a"], method, fill(path, "ghost"))
        assert (ghost.status_code, ghost.json()) == (404, {"detail": "no execution 'x-ghost-1'"}), (method, path)
        for role, user in ROLE_USERS.items():
            answer = call(server, keys[user], method, fill(path, "alpha"))
            if ROLES.index(role) >= ROLES.index(needed):
                assert answer.status_code not in (401, 403), (method, path, role, answer.text)
                assert answer.json() != {"detail": "no execution 'x-alpha-1'"}, (method, path, role)
            else:
                assert answer.status_code == 403, (method, path, role, answer.status_code, answer.text)
                assert f"this needs {needed}" in answer.json()["detail"]
            other = call(server, keys[user], method, fill(path, "beta"))
            assert (other.status_code, other.json()) == (404, {"detail": "no execution 'x-beta-1'"}), (method, path)
        nobody = call(server, keys["nobody"], method, fill(path, "alpha"))
        assert (nobody.status_code, nobody.json()) == (404, {"detail": "no execution 'x-alpha-1'"})


def test_only_server_admins_make_projects_and_users_and_listings_show_only_ones_own(world: dict[str, Any]):
    server, keys = world["server"], world["keys"]
    for user in ("admin-a", "viewer-a", "nobody"):
        with server.client(keys[user]) as client:
            assert client.post("/projects", json={"name": "gamma"}).status_code == 403
            assert client.post("/users", json={"name": "eve"}).status_code == 403
            assert client.get("/users").status_code == 403
    with server.client(keys["beta-only"]) as client:
        assert [p["name"] for p in client.get("/projects").json()] == ["beta"]
        assert client.get("/me").json() == {"user": "beta-only", "admin": False, "roles": {"beta": "viewer"}}
    with server.client(keys["nobody"]) as client:
        assert client.get("/projects").json() == []
    with server.client(keys["admin"]) as client:
        assert {p["name"] for p in client.get("/projects").json()} >= {"alpha", "beta", "default"}
        members = client.get("/projects/alpha/members").json()
    assert {m["user"]: m["role"] for m in members} == {u: r for r, u in ROLE_USERS.items()}


def test_a_project_admin_manages_members_and_a_new_member_gets_in(world: dict[str, Any]):
    server, keys = world["server"], world["keys"]
    with server.client(keys["admin"]) as admin:
        assert admin.post("/users", json={"name": "newcomer"}).status_code == 201
        key = admin.post("/users/newcomer/keys", json={}).json()["key"]
    with server.client(key) as newcomer:
        assert newcomer.get("/projects/alpha").status_code == 404
        with server.client(keys["admin-a"]) as project_admin:
            assert project_admin.put("/projects/alpha/members/newcomer", json={"role": "viewer"}).status_code == 200
            assert project_admin.put("/projects/alpha/members/newcomer", json={"role": "owner"}).status_code == 400
            assert newcomer.get("/projects/alpha").json()["role"] == "viewer"
            assert project_admin.delete("/projects/alpha/members/newcomer").status_code == 204
        assert newcomer.get("/projects/alpha").status_code == 404
    with server.client(keys["editor-a"]) as editor:  # an editor is not a project admin
        assert editor.put("/projects/alpha/members/nobody", json={"role": "admin"}).status_code == 403


def test_a_key_is_shown_once_stored_as_a_hash_and_stops_working_when_revoked_or_expired(world: dict[str, Any]):
    server, keys = world["server"], world["keys"]
    with server.client(keys["admin"]) as admin:
        assert admin.post("/users", json={"name": "keyholder"}).status_code == 201
        made = admin.post("/users/keyholder/keys", json={"description": "laptop"}).json()
        short = admin.post("/users/keyholder/keys", json={"expires_in_days": 1 / 86400}).json()
    key, key_id = made["key"], made["id"]
    assert re.fullmatch(r"plait_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", key)
    secret = key.split("_", 2)[2]
    engine = sa.create_engine(world["url"])
    with engine.connect() as conn:
        stored = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).mappings().one()
    engine.dispose()
    assert secret not in str(dict(stored)) and stored["digest"] != secret
    with server.client(key) as holder:
        assert holder.get("/me").json()["user"] == "keyholder"
        listed = holder.get("/users/keyholder/keys").json()
        assert {k["id"] for k in listed} == {key_id, short["id"]} and all("key" not in k for k in listed)
        assert holder.get("/users/admin/keys").status_code == 403
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and call(server, short["key"], "GET", "/me").status_code != 401:
        time.sleep(0.2)
    assert call(server, short["key"], "GET", "/me").status_code == 401  # expired
    with server.client(keys["nobody"]) as other:  # another user's key: as if it did not exist
        assert other.delete(f"/keys/{key_id}").status_code == 404
    with server.client(key) as holder:
        assert holder.delete(f"/keys/{key_id}").status_code == 204
        assert holder.get("/me").status_code == 401


def test_a_server_open_beyond_loopback_without_authentication_refuses_to_start(tmp_path: Path):
    env = server_env(f"sqlite:///{tmp_path / 'x.db'}", tmp_path)
    done = subprocess.run([sys.executable, "-m", "plait.cli", "server", "--host", "0.0.0.0", "--auth", "none"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "refusing to serve 0.0.0.0 without authentication" in done.stderr


def test_bootstrap_makes_the_admin_once(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    key = bootstrap(url, tmp_path)
    assert key.startswith("plait_")
    again = subprocess.run([sys.executable, "-m", "plait.cli", "server", "bootstrap"],
                           env=server_env(url, tmp_path), capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "has an admin user already" in again.stderr


def test_the_first_start_in_a_terminal_prints_the_admins_key_once_and_it_works(tmp_path: Path):
    """`plait server` in a terminal, on a fresh store: the address, and the admin's key, once."""
    import os
    import pty

    from harness import free_port

    port = free_port()
    env = server_env(f"sqlite:///{tmp_path / 'x.db'}", tmp_path)

    def first_lines() -> tuple[str, subprocess.Popen[bytes]]:
        master, slave = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "plait.cli", "server", "--port", str(port), "--engines", "0"],
                                env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        text, deadline = b"", time.monotonic() + 60
        while b"API docs" not in text and time.monotonic() < deadline:
            try:
                text += os.read(master, 4096)
            except OSError:
                break
        os.close(master)
        return text.decode(errors="replace"), proc

    text, proc = first_lines()
    try:
        key = re.search(r"admin's API key \(shown once; keep it\): (plait_\S+)", text)
        assert key, text
        assert f"http://127.0.0.1:{port} (API docs: http://127.0.0.1:{port}/docs)" in text
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/me",
                                   headers={"Authorization": f"Bearer {key[1]}"})
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert answer.json() == {"user": "admin", "admin": True, "roles": {"default": "admin"}}
    finally:
        proc.terminate()
        proc.wait(20)
    again, proc = first_lines()
    proc.terminate()
    proc.wait(20)
    assert "API key" not in again and "API docs" in again
