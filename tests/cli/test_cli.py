"""The plait command line, run as a user runs it: in a subprocess."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cli_flows
import flows
import plait as plait_api
import pytest
from plait.engine.execution import RunOptions

ROOT = Path(__file__).resolve().parents[2]
PLAIT = [sys.executable, "-m", "plait.cli"]
FLOWS = str(ROOT / "tests" / "flows.py")


CLI_FLOWS = str(ROOT / "tests" / "cli_flows.py")


def plait(*args: str, check: bool = False, timeout: float = 120,
          env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*PLAIT, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                            env=None if env is None else {**os.environ, **env})
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


def test_plugins_lists_the_built_in_task_types_and_platforms():
    result = plait("plugins", check=True)
    assert re.search(r"container\s*│\s*container\s*│\s*plait", result.stdout)
    assert re.search(r"python\s*│\s*python\s*│\s*plait", result.stdout)
    assert re.search(r"platform\s*┃.*\n.*\n│ kubernetes\s*│\s*kubernetes\s*│\s*plait\s*│.*\n│ local\s*│\s*local\s*│\s*plait", result.stdout)


def test_run_on_the_local_platform_named_or_from_PLAIT_PLATFORM():
    named = plait("run", f"{FLOWS}:arithmetic", "--platform", "local", "--a", "3", check=True)
    assert re.search(r"output:\s*10", named.stdout)  # (3 + 2) * 2
    unknown = plait("run", f"{FLOWS}:arithmetic", "--a", "3", env={"PLAIT_PLATFORM": "moon"})
    assert unknown.returncode != 0
    assert "unknown platform 'moon'" in unknown.stderr and "Installed platforms: kubernetes, local." in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_executions_list_show_and_events():
    run = plait("run", f"{FLOWS}:noisy_wf", "--x", "9", check=True)
    xid = execution_id(run.stdout)
    listed = plait("executions", "list", check=True)
    assert re.search(rf"{xid}.*flows\.noisy_wf.*default/development", listed.stdout)  # the default tenant
    shown = plait("executions", "show", xid, check=True)
    assert "succeeded" in shown.stdout
    assert 'inputs: {"x": 9}' in shown.stdout and 'outputs: {"o0": 9}' in shown.stdout
    assert re.search(r"│ noisy\s+│ succeeded\s+│ 1 ", shown.stdout)  # the node and its attempts
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


# -- the options of plait run, each observed from outside the engine -----------------------


def shown_nodes(xid: str) -> dict[str, tuple[str, int]]:
    """Each node's phase and attempt count, read from the table ``plait executions show`` prints."""
    shown = plait("executions", "show", xid, "--no-logs", check=True).stdout
    rows = re.findall(r"^│ (\S+)\s+│ (\w+)[^│]*│ (\d+)\s+│", shown, re.MULTILINE)
    return {node: (phase, int(attempts)) for node, phase, attempts in rows}


def test_keep_going_runs_what_does_not_depend_on_the_failure(tmp_path):
    marker = tmp_path / "calls"
    result = plait("run", f"{FLOWS}:branches", "--x", "1", "--seconds", "1", "--marker", str(marker),
                   "--keep-going")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "failed at node boom" in result.stderr
    nodes = shown_nodes(execution_id(result.stderr))
    assert nodes["slow"][0] == "succeeded"  # independent of boom: ran to the end
    assert nodes["double"][0] == "skipped" and nodes["add"][0] == "skipped"
    assert len(marker.read_text().splitlines()) == 1


def test_without_keep_going_the_first_failure_aborts_the_rest(tmp_path):
    marker = tmp_path / "calls"
    result = plait("run", f"{FLOWS}:branches", "--x", "1", "--seconds", "60", "--marker", str(marker))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "failed at node boom" in result.stderr
    nodes = shown_nodes(execution_id(result.stderr))
    assert nodes["boom"][0] == "failed"
    assert nodes["slow"][0] == "aborted"  # fail fast: the sibling did not run its 60 s
    assert "double" not in nodes and "add" not in nodes


def test_overwrite_cache_runs_a_cached_task_again_and_replaces_its_result(tmp_path):
    source, marker = tmp_path / "source.txt", tmp_path / "calls"
    args = ["run", f"{CLI_FLOWS}:cached_read", "--path", str(source), "--marker", str(marker), "--json"]

    def output(*extra: str) -> str:
        out = plait(*args, *extra, check=True).stdout
        return json.loads(out[out.index("{"):])["o0"]  # after the progress lines, the outputs as JSON

    source.write_text("first")
    assert output() == "first"
    source.write_text("second")
    assert output() == "first"  # a cache hit: the task did not run
    assert len(marker.read_text().splitlines()) == 1
    assert output("--overwrite-cache") == "second"  # ran again, whatever the cache held
    assert len(marker.read_text().splitlines()) == 2
    source.write_text("third")
    assert output() == "second"  # the cache now holds the overwriting run's result
    assert len(marker.read_text().splitlines()) == 2


def test_workers_sets_how_many_worker_processes_run_python_tasks(tmp_path):
    # Each item waits until three have started, so three can only meet if three workers run
    # at once; six items on a pool of three use exactly three processes.
    marker = tmp_path / "pids"
    plait("run", f"{CLI_FLOWS}:worker_pids", "--n", "6", "--marker", str(marker), "--party", "3",
          "--workers", "3", check=True, env={"PLAIT_WORKERS": "2"})
    pids = marker.read_text().split()
    assert len(pids) == 6 and len(set(pids)) == 3, pids


def test_PLAIT_WORKERS_sets_the_worker_pool_without_the_flag(tmp_path):
    marker = tmp_path / "pids"
    plait("run", f"{CLI_FLOWS}:worker_pids", "--n", "4", "--marker", str(marker), "--party", "1",
          check=True, env={"PLAIT_WORKERS": "1"})
    assert len(set(marker.read_text().split())) == 1


def test_inline_runs_python_tasks_in_the_engines_process(tmp_path):
    for inline in (True, False):
        marker = tmp_path / f"pid-{inline}"
        proc = subprocess.Popen([*PLAIT, "run", f"{CLI_FLOWS}:pid_wf", "--marker", str(marker),
                                 *(["--inline"] if inline else [])],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out + err
        task_pid = int(marker.read_text())
        assert (task_pid == proc.pid) is inline, (inline, task_pid, proc.pid)


def test_project_and_domain_name_the_tenant_the_execution_is_recorded_under():
    run = plait("run", f"{FLOWS}:arithmetic", "--a", "1", "--project", "acme", "--domain", "staging",
                check=True)
    xid = execution_id(run.stdout)
    listed = plait("executions", "list", check=True).stdout
    assert re.search(rf"{xid}.*acme/staging", listed), listed
    shown = plait("executions", "show", xid, "--no-logs", check=True).stdout
    assert f"{xid}  flows.arithmetic" in shown and "acme/staging" in shown.splitlines()[0]


def test_PLAIT_DEBUG_shows_the_traceback_of_an_error_that_otherwise_prints_without_one():
    plain = plait("run", f"{FLOWS}:arithmetic", "--a", "three")
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    debug = plait("run", f"{FLOWS}:arithmetic", "--a", "three", env={"PLAIT_DEBUG": "1"})
    assert debug.returncode != 0
    assert "Traceback (most recent call last)" in debug.stderr
    assert "InputError: --a: cannot read 'three' as int" in debug.stderr


def test_in_a_log_progress_is_a_line_per_node_transition_and_per_tenth_of_a_map():
    result = plait("run", f"{CLI_FLOWS}:mapped", "--n", "50", check=True)  # stdout is a pipe, not a terminal
    lines = re.findall(r"^\[\s*\d+\.\ds\] (\S+): (.+)$", result.stdout, re.MULTILINE)
    transitions = [(node, what) for node, what in lines if "items" not in what]
    assert transitions == [("count_to", "running"), ("count_to", "succeeded"), ("map-fine", "running"),
                           ("map-fine", "succeeded"), ("total", "running"), ("total", "succeeded")]
    items = [what for node, what in lines if "items" in what]
    assert items == [f"{done}/50 items" for done in range(5, 51, 5)]
    assert all(node == "map-fine" for node, what in lines if "items" in what)
    assert "\x1b[" not in result.stdout  # no live redraws in a log


def test_by_default_there_is_one_worker_process_per_core(tmp_path):
    cores = len(os.sched_getaffinity(0))
    if cores > 16:
        pytest.skip("starting a worker per core on this many cores is not worth a unit test")
    marker = tmp_path / "pids"
    plait("run", f"{CLI_FLOWS}:worker_pids", "--n", str(2 * cores), "--marker", str(marker), "--party", str(cores),
          check=True, env={"PLAIT_WORKERS": ""})
    assert len(set(marker.read_text().split())) == cores


def test_a_type_mismatch_in_the_workflow_is_an_error_without_a_traceback():
    result = plait("run", f"{CLI_FLOWS}:mismatched", "--x", "1")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "node 'fine', input 'x': expects int, but is bound to as_text.o0 of type str" in result.stderr
    assert "Traceback" not in result.stderr


def test_lists_and_dicts_are_given_as_json_on_the_command_line():
    result = plait("run", f"{CLI_FLOWS}:structured", "--counts", '{"a": 1, "b": 2}', "--sizes", "[0.5, 1.5]",
                   "--json", check=True)
    assert json.loads(result.stdout[result.stdout.index("{"):]) == {"o0": 6.0}


def test_on_a_terminal_progress_shows_nodes_done_running_failed_and_a_bar_per_map(tmp_path):
    from plait.cli.progress import Progress
    from rich.console import Console

    def drawn(progress: Progress) -> str:
        screen = Console(file=io.StringIO(), width=120, force_terminal=False)
        screen.print(progress.render())
        return screen.file.getvalue()

    progress = Progress(cli_flows.mapped.spec, Console(file=io.StringIO(), force_terminal=True, width=120))
    assert progress.live
    frames: list[str] = []

    def listener(event, state):
        progress.on_event(event, state)
        frames.append(drawn(progress))

    with progress:
        execution = plait_api.run(cli_flows.mapped, {"n": 20}, listener=listener)
    assert execution.outputs == {"o0": 210}
    assert any("nodes: 1 done, 1 running, 0 failed, 1 waiting" in frame for frame in frames)
    final = drawn(progress)
    assert "nodes: 3 done, 0 running, 0 failed, 0 waiting" in final
    assert re.search(r"map-fine\s+━+\s+20/20\s+succeeded", final), final

    failing = Progress(flows.branches.spec, Console(file=io.StringIO(), force_terminal=True, width=120))
    with failing:
        plait_api.run(flows.branches, {"x": 1, "seconds": 0.1, "marker": str(tmp_path / "m")},
                      options=RunOptions(fail_fast=False, backoff_base=0.01), listener=failing.on_event)
    assert "nodes: 1 done, 0 running, 1 failed" in drawn(failing)
    assert re.search(r"boom\s+failed", drawn(failing))
