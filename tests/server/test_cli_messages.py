"""What the command line prints against a real ``plait server`` (SQLite store): user text shown
as written, failures of a remote run as a local run reports them, messages that name the flag
or the variable to set, and the server's own start-up messages."""

from __future__ import annotations

import os
import pty
import re
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import ServerProcess, free_port, server_env, store_url, wait_for

FLOWS = Path(__file__).parents[1] / "cli" / "msg_flows.py"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server with one engine worker and the module above registered in default/development."""
    home = tmp_path_factory.mktemp("cli-messages")
    with store_url("sqlite", home) as url:
        made = subprocess.run([sys.executable, "-m", "plait.cli", "server", "bootstrap"],
                              env={**server_env(url, home), "PLAIT_SERVER_PORT": "8123"}, capture_output=True,
                              text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        with ServerProcess(url, home, engines=1, env={"PLAIT_WORKERS": "1"}) as server:
            source = home / "source"
            source.mkdir()
            (source / "msg_flows.py").write_text(FLOWS.read_text())
            world = {"server": server, "key": made.stdout.strip(), "bootstrap_err": made.stderr, "home": home}
            assert cli(world, "register", str(source / "msg_flows.py"), "--version", "v1").returncode == 0
            yield world


def cli(world: dict[str, Any], *args: str, key: str | None = "admin") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    env.update(PLAIT_SERVER=world["server"].url, PLAIT_HOME=str(world["home"] / "client"))
    if key:
        env["PLAIT_API_KEY"] = world["key"] if key == "admin" else key
    return subprocess.run([sys.executable, "-m", "plait.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=world["home"])


def test_a_failed_remote_run_reports_as_a_local_run_does_with_the_error_as_written(world: dict[str, Any]):
    done = cli(world, "run", "--remote", "msg_flows.broken", "--path", "/tmp/x", "--wait", "--tag", "nightly")
    assert done.returncode == 1, done.stderr
    xid = done.stdout.split()[0]
    assert f"execution {xid} failed at node opener:" in done.stderr
    assert "cannot open [/tmp/x] for 13" in done.stderr
    assert f"details: plait executions show {xid}" in done.stderr
    shown = cli(world, "executions", "show", xid, "--no-logs")
    assert shown.returncode == 0 and "cannot open [/tmp/x] for 13" in shown.stdout, shown.stderr
    tagged = cli(world, "executions", "list", "--project", "default", "--domain", "development", "--tag", "nightly")
    assert xid in tagged.stdout


def test_descriptions_with_brackets_are_listed_as_written_and_key_ids_whole(world: dict[str, Any]):
    assert cli(world, "projects", "create", "wiki", "--description", "see [/wiki] and [bold]").returncode == 0
    listed = cli(world, "projects", "list")
    assert listed.returncode == 0, listed.stderr
    assert "see [/wiki] and [bold]" in listed.stdout
    made = cli(world, "keys", "create", "--description", "[/wiki] " + "long words " * 20)
    assert made.returncode == 0, made.stderr
    keys = cli(world, "keys", "list")
    assert keys.returncode == 0, keys.stderr
    assert "[/wiki]" in keys.stdout
    assert made.stdout.split("_")[1] in keys.stdout  # the id on one line, whole


def test_without_a_key_the_client_says_PLAIT_API_KEY_is_not_set(world: dict[str, Any]):
    keyless = cli(world, "whoami", key=None)
    assert keyless.returncode == 2 and "PLAIT_API_KEY is not set" in keyless.stderr
    wrong = cli(world, "whoami", key="plait_nope_nope")
    assert wrong.returncode == 2 and "this API key is not valid: it is mistyped, expired or revoked" in wrong.stderr
    assert "PLAIT_API_KEY is not set" not in wrong.stderr


@pytest.mark.parametrize("days", ["0", "-1"])
def test_a_key_expiry_is_checked_naming_the_flag(world: dict[str, Any], days: str):
    done = cli(world, "keys", "create", "--expires-in-days", days)
    assert done.returncode == 2 and "'--expires-in-days'" in done.stderr and "expires_in_days" not in done.stderr


def test_a_server_admin_is_admin_of_every_project_and_members_print_as_a_table(world: dict[str, Any]):
    me = cli(world, "whoami")
    assert me.stdout.splitlines() == ["admin (server admin)", "  admin of every project"]
    assert cli(world, "projects", "create", "team").returncode == 0
    assert "team has no members" in cli(world, "projects", "members", "team").stdout
    assert cli(world, "users", "create", "bob").returncode == 0
    assert cli(world, "projects", "grant", "team", "bob", "viewer").returncode == 0
    members = cli(world, "projects", "members", "team").stdout
    assert re.search(r"user\s.*\srole", members) and re.search(r"bob\s.*\sviewer", members), members


def test_pools_name_the_servers_store(world: dict[str, Any]):
    done = cli(world, "pools")
    assert done.returncode == 0, done.stderr
    assert "the server's store" in done.stdout and "local store" not in done.stdout


def test_bootstrap_says_how_to_use_the_key_and_describes_it(world: dict[str, Any]):
    assert "export PLAIT_SERVER=http://127.0.0.1:8123 PLAIT_API_KEY=<that key>" in world["bootstrap_err"]
    assert world["key"] not in world["bootstrap_err"]
    assert "made by plait server bootstrap" in cli(world, "keys", "list").stdout


def on_a_terminal(args: list[str], env: dict[str, str], until: bytes, stream: str = "stderr") -> bytes:
    """Run ``plait ARGS`` with ``stream`` on a terminal (a pty) until it has written ``until``
    (or exited); what it wrote there."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "plait.cli", *args], env=env, stdin=subprocess.DEVNULL,
                            stdout=follower if stream == "stdout" else subprocess.DEVNULL,
                            stderr=follower if stream == "stderr" else subprocess.DEVNULL, start_new_session=True)
    os.close(follower)
    seen = b""

    def written() -> bool:
        nonlocal seen
        if select.select([leader], [], [], 0.1)[0]:
            try:
                seen += os.read(leader, 4096)
            except OSError:  # it exited and closed the terminal
                return True
        return until in seen

    try:
        wait_for(written, f"`plait {' '.join(args)}` to write {until!r}", interval=0)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
        proc.wait(30)
        os.close(leader)
    return seen


def test_the_first_start_banner_names_the_port_the_server_listens_on(tmp_path: Path):
    port = free_port()  # the first start prints a key only to a terminal
    seen = on_a_terminal(["server", "--port", str(port), "--engines", "0"],
                         server_env(f"sqlite:///{tmp_path / 'first.db'}", tmp_path), b"PLAIT_API_KEY=<that key>")
    assert f"export PLAIT_SERVER=http://127.0.0.1:{port} ".encode() in seen


def test_keys_list_on_a_narrow_terminal_shows_each_key_id_whole(world: dict[str, Any]):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    env.update(PLAIT_SERVER=world["server"].url, PLAIT_API_KEY=world["key"], COLUMNS="60")
    seen = on_a_terminal(["keys", "list"], env, b"\xe2\x94\x98", stream="stdout")  # the table's last corner
    assert f"{world['key'].split('_')[1]} ".encode() in seen, seen.decode()


def test_a_taken_port_fails_before_the_banner_naming_the_port(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "plait.cli", "server", "--port", str(port)],
                              env=server_env(f"sqlite:///{tmp_path / 'p.db'}", tmp_path), capture_output=True,
                              text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert f"port {port} on 127.0.0.1 is already in use" in done.stderr and "--port" in done.stderr
    assert "plait server: http" not in done.stderr


def test_an_unreachable_store_stops_the_server_with_one_line_naming_PLAIT_DB_URL(tmp_path: Path):
    done = subprocess.run([sys.executable, "-m", "plait.cli", "server", "--port", str(free_port())],
                          env=server_env("postgresql+psycopg://bob:hunter2@127.0.0.1:9/nowhere", tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "PLAIT_DB_URL=postgresql+psycopg://bob:***@127.0.0.1:9/nowhere" in done.stderr
    assert "hunter2" not in done.stderr
