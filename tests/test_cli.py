"""The plait command line, run as a user runs it: in a subprocess."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PLAIT = [sys.executable, "-m", "plait.cli"]
FLOWS = str(ROOT / "tests" / "flows.py")


def plait(*args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*PLAIT, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def execution_id(text: str) -> str:
    match = re.search(r"execution (\d{8}-\d{6}-[0-9a-f]{6})", text)
    assert match, text
    return match.group(1)


def test_run_parses_typed_inputs_and_prints_outputs():
    result = plait("run", f"{FLOWS}:arithmetic", "--a", "3", "--b=4", check=True)
    assert "succeeded" in result.stdout
    assert re.search(r"output:\s*14", result.stdout)


def test_run_takes_structured_inputs_as_json():
    result = plait("run", f"{FLOWS}:points", "--p", '{"x": 1, "y": 2.5}', check=True)
    assert "Point(x=2, y=2.5)" in result.stdout


def test_a_failing_run_exits_1_and_names_the_node(tmp_path):
    result = plait("run", f"{FLOWS}:permanent_wf", "--marker", str(tmp_path / "m"))
    assert result.returncode == 1
    assert "failed at node permanent" in result.stderr
    assert "can never work" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--a", "three"], "--a: cannot read 'three' as int"),
    (["--z", "1"], "has no input --z; its inputs are --a, --b"),
    ([], "needs input 'a' (int)"),
])
def test_bad_input_is_a_clear_error_without_a_traceback(args, message):
    result = plait("run", f"{FLOWS}:arithmetic", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_workflow_and_file_are_clear_errors():
    missing = plait("run", f"{FLOWS}:nope")
    assert missing.returncode == 2 and "has no workflow 'nope'" in missing.stderr and "arithmetic" in missing.stderr
    nofile = plait("run", "nowhere.py:wf")
    assert nofile.returncode == 2 and "no such file: nowhere.py" in nofile.stderr


def test_plugins_lists_the_built_in_task_types():
    result = plait("plugins", check=True)
    assert re.search(r"container\s*│\s*container\s*│\s*plait", result.stdout)
    assert re.search(r"python\s*│\s*python\s*│\s*plait", result.stdout)


def test_executions_list_show_and_events():
    run = plait("run", f"{FLOWS}:noisy_wf", "--x", "9", check=True)
    xid = execution_id(run.stdout)
    listed = plait("executions", "list", check=True)
    assert xid in listed.stdout and "flows.noisy_wf" in listed.stdout
    shown = plait("executions", "show", xid, check=True)
    assert "succeeded" in shown.stdout
    assert "hello from stdout 9" in shown.stdout and "hello from stderr 9" in shown.stdout
    events = plait("executions", "events", xid, check=True)
    phases = [line.split()[3] for line in events.stdout.splitlines()]
    assert phases[0] == "running" and phases[-1] == "succeeded"
    assert "attempt" in events.stdout


def test_show_of_an_unknown_execution_is_a_clear_error():
    result = plait("executions", "show", "nope")
    assert result.returncode == 2 and "no execution 'nope'" in result.stderr


def test_ctrl_c_aborts_every_running_attempt_and_records_it(tmp_path):
    marker = tmp_path / "starts"
    proc = subprocess.Popen([*PLAIT, "run", f"{FLOWS}:two_slow", "--seconds", "120", "--marker", str(marker)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 60
    while not (marker.exists() and len(marker.read_text().splitlines()) == 2):
        assert time.monotonic() < deadline, "the two slow tasks did not start"
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "aborted" in err
    xid = plait("executions", "list", check=True).stdout
    latest = re.search(r"(\d{8}-\d{6}-[0-9a-f]{6})\s*│\s*flows\.two_slow\s*│\s*aborted", xid)
    assert latest, xid
    shown = plait("executions", "show", latest.group(1), check=True).stdout
    assert shown.count("aborted") >= 3  # the execution and both nodes
    # the worker processes that ran the slow tasks are gone
    time.sleep(0.5)
    for pid in map(int, marker.read_text().split()):
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2], pid


def test_a_second_ctrl_c_does_not_cut_the_abort_short(tmp_path):
    marker = tmp_path / "starts"
    proc = subprocess.Popen([*PLAIT, "run", f"{FLOWS}:container_then_double", "--marker", str(marker),
                             "--seconds", "120"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline, "the container task did not start"
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    pid = int(marker.read_text().split()[0])
    time.sleep(0.3)
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    listed = plait("executions", "list", "--limit", "1", check=True).stdout
    xid = re.search(r"\d{8}-\d{6}-[0-9a-f]{6}", listed).group(0)
    events = plait("executions", "events", xid, check=True).stdout
    assert re.search(r"attempt\s+aborted\s+\S*slow_echo/1", events), events
