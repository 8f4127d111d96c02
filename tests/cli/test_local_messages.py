"""What the command line prints on the local store when things go wrong: user text shown as
written (never read as rich markup), refusals that name the flag, and hints about the store."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

PLAIT = [sys.executable, "-m", "plait.cli"]

FLOWS = Path(__file__).with_name("msg_flows.py")


def plait(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("PLAIT_SERVER", "PLAIT_API_KEY")}
    return subprocess.run([*PLAIT, *args], capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={**environ, **env})


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    path = tmp_path / "msg_flows.py"
    path.write_text(FLOWS.read_text())  # a folder of its own: registering it archives only that
    return path


def test_a_task_error_with_brackets_is_printed_as_written_by_run_and_executions_show(flows: Path):
    failed = plait("run", f"{flows}:broken", "--path", "/tmp/x")
    assert failed.returncode == 1, failed.stderr
    assert "cannot open [/tmp/x] for 13" in failed.stderr and "MarkupError" not in failed.stderr
    xid = re.search(r"execution (\S+) failed at node opener", failed.stderr)
    assert xid, failed.stderr
    shown = plait("executions", "show", xid.group(1))
    assert shown.returncode == 0, shown.stderr
    assert "failed at opener: " in shown.stdout
    assert "cannot open [/tmp/x] for 13" in shown.stdout


def test_show_of_an_aborted_execution_names_who_aborted_it_and_no_node(flows: Path):
    xid = plait("launch", f"{flows}:doubled", "--a", "1").stdout.strip()
    assert "aborted (it had not started)" in plait("executions", "abort", xid).stdout
    shown = plait("executions", "show", xid, "--no-logs").stdout
    assert "None" not in shown and "failed at" not in shown
    assert re.search(r"^aborted by \S+ before it started$", shown, re.M), shown


@pytest.mark.parametrize("flag", ["--keep-going", "--overwrite-cache", "--inline", "--json", "--priority=3",
                                  "--workers=2"])
def test_run_remote_refuses_a_flag_a_launch_does_not_use_naming_it(flag: str):
    done = plait("run", "--remote", "anything", flag)
    assert done.returncode == 2
    assert f"{flag.split('=')[0]}: not used by `plait run --remote`" in done.stderr


def test_run_remote_refuses_platform_against_a_server():
    done = plait("run", "--remote", "anything", "--platform", "kubernetes", PLAIT_SERVER="http://127.0.0.1:9")
    assert done.returncode == 2 and "--platform: not used by `plait run --remote`" in done.stderr


def test_run_remote_tags_the_execution(flows: Path):
    assert plait("register", str(flows), "--version", "v1").returncode == 0
    launched = plait("run", "--remote", "msg_flows.doubled", "--a", "2", "--tag", "nightly", "--tag", "eu")
    assert launched.returncode == 0, launched.stderr
    xid = launched.stdout.strip()
    where = ["--project", "default", "--domain", "development"]
    assert xid in plait("executions", "list", *where, "--tag", "nightly", "--tag", "eu").stdout
    assert "no executions (project default, domain development, tag other)" in plait(
        "executions", "list", *where, "--tag", "other").stdout


def test_ctrl_c_while_waiting_for_a_remote_run_leaves_it_running_and_says_how_to_abort_it(flows: Path):
    assert plait("register", str(flows), "--version", "v1").returncode == 0
    proc = subprocess.Popen([*PLAIT, "run", "--remote", "msg_flows.doubled", "--a", "2", "--wait"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    xid = proc.stdout.readline().strip()  # printed once launched; no engine runs it: it stays queued
    assert "queued: waiting for an engine" in proc.stderr.readline()  # printed once it waits
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, err
    assert f"stopped waiting; {xid} is still running (plait executions abort {xid})" in err
    assert "aborted" not in err
    assert "queued" in plait("executions", "show", xid, "--no-logs").stdout


@pytest.mark.parametrize("command", [["launch", "x.py:wf"], ["executions", "resume", "20260101-000000-abcdef"]])
def test_resume_and_launch_refuse_to_run_on_the_local_store_while_a_server_is_named(command: list[str]):
    done = plait(*command, PLAIT_SERVER="http://127.0.0.1:9")
    assert done.returncode == 2
    assert "is a local command" in done.stderr
    assert ("plait executions recover 20260101-000000-abcdef" if command[0] == "executions"
            else "plait run --remote") in done.stderr


def test_a_key_without_a_server_notes_once_that_the_local_store_is_read():
    keyed = plait("executions", "list", PLAIT_API_KEY="plait_x_y")
    assert keyed.returncode == 0
    assert keyed.stderr.count("PLAIT_API_KEY is set but PLAIT_SERVER is not: using the local store") == 1
    assert "PLAIT_SERVER" not in plait("executions", "list").stderr


@pytest.mark.parametrize("limit", ["0", "501"])
def test_executions_list_checks_limit_naming_the_flag(limit: str):
    done = plait("executions", "list", "--limit", limit)
    assert done.returncode == 2 and "'--limit'" in done.stderr and "1<=x<=500" in done.stderr


def test_an_empty_list_says_no_executions_with_its_filters():
    done = plait("executions", "list", "--project", "pricing", "--phase", "failed")
    assert done.returncode == 0 and done.stdout.strip() == "no executions (project pricing, phase failed)"


def test_an_unreachable_store_is_one_line_naming_PLAIT_DB_URL_without_its_password():
    done = plait("executions", "list", PLAIT_DB_URL="postgresql+psycopg://bob:hunter2@127.0.0.1:9/nowhere")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "PLAIT_DB_URL=postgresql+psycopg://bob:***@127.0.0.1:9/nowhere" in done.stderr
    assert "hunter2" not in done.stderr and "Traceback" not in done.stderr
