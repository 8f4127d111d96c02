"""Managing a server from the command line: projects, users, keys and roles through the API."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import STORES, ServerProcess, bootstrap, store_url


@pytest.fixture(params=STORES)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    with store_url(request.param, tmp_path) as url:
        key = bootstrap(url, tmp_path)
        with ServerProcess(url, tmp_path) as proc:
            yield proc, key


def plait(server: ServerProcess, key: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    env.update(PLAIT_SERVER=server.url, PLAIT_HOME=str(server.home / "client"))
    if key:
        env["PLAIT_API_KEY"] = key
    return subprocess.run([sys.executable, "-m", "plait.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_an_admin_makes_a_project_a_user_and_a_key_and_the_user_works_within_its_role(server):
    proc, admin = server
    assert "project pricing: domains development, staging, production" in ok(plait(proc, admin, "projects", "create",
                                                                                   "pricing"))
    ok(plait(proc, admin, "users", "create", "alice"))
    made = plait(proc, admin, "keys", "create", "--user", "alice", "--description", "laptop")
    alice = ok(made).strip()
    assert alice.startswith("plait_") and "for alice" in made.stderr
    ok(plait(proc, admin, "projects", "grant", "pricing", "alice", "launcher"))
    assert ok(plait(proc, alice, "whoami")).split() == ["alice", "pricing:", "launcher"]
    assert "pricing" in ok(plait(proc, alice, "projects", "list"))
    assert "alice │ launcher" in ok(plait(proc, admin, "projects", "members", "pricing"))

    refused = plait(proc, alice, "projects", "create", "mapping")
    assert refused.returncode == 2 and "user 'alice' is not a server admin" in refused.stderr
    hidden = plait(proc, alice, "projects", "members", "default")
    assert hidden.returncode == 2 and "no project 'default'" in hidden.stderr

    key_id = alice.split("_")[1]
    assert key_id in ok(plait(proc, alice, "keys", "list"))
    assert f"key {key_id} revoked" in ok(plait(proc, alice, "keys", "revoke", key_id))
    gone = plait(proc, alice, "whoami")
    assert gone.returncode == 2 and "this API key is not valid: it is mistyped, expired or revoked" in gone.stderr and proc.url in gone.stderr


def test_without_a_server_or_a_key_the_command_says_what_to_set(server):
    proc, _ = server
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    done = subprocess.run([sys.executable, "-m", "plait.cli", "whoami"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "set PLAIT_SERVER (and PLAIT_API_KEY)" in done.stderr
    keyless = plait(proc, None, "whoami")
    assert keyless.returncode == 2 and "PLAIT_API_KEY" in keyless.stderr
    down = subprocess.run([sys.executable, "-m", "plait.cli", "whoami", "--server", "http://127.0.0.1:9"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert down.returncode == 2 and "cannot reach the plait server at http://127.0.0.1:9" in down.stderr


def test_a_disabled_users_keys_stop_working_until_it_is_enabled_again(server):
    proc, admin = server
    ok(plait(proc, admin, "users", "create", "bob"))
    bob = ok(plait(proc, admin, "keys", "create", "--user", "bob")).strip()
    assert ok(plait(proc, bob, "whoami")).split() == ["bob"]
    assert "user bob disabled" in ok(plait(proc, admin, "users", "disable", "bob"))
    refused = plait(proc, bob, "whoami")
    assert refused.returncode == 2 and "this API key is not valid" in refused.stderr
    assert "yes" in ok(plait(proc, admin, "users", "list")).split("bob", 1)[1].splitlines()[0]
    assert "user bob enabled" in ok(plait(proc, admin, "users", "enable", "bob"))
    assert ok(plait(proc, bob, "whoami")).split() == ["bob"]
    refused = plait(proc, bob, "users", "enable", "bob")
    assert refused.returncode == 2 and "not a server admin" in refused.stderr

