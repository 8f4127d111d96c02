"""``plait executions logs``: an attempt's log, as a user reads it, on both platforms.

Every test runs the CLI in a subprocess, as a user does. On the local platform the log is the
attempt's files; on the emulated cluster (tests/k8s_cluster.py: the API emulator, a simulated
node running each pod as a real process, S3 on the moto server) a running attempt's log is its
pod's, read through the API, and an ended one's is what the engine kept when the pod ended.
"""

from __future__ import annotations

import queue
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAIT = [sys.executable, "-m", "plait.cli"]
FLOWS = str(ROOT / "tests" / "flows.py")

LOG_FLOWS = '''
import sys
import time
from pathlib import Path

import plait


@plait.task(retries=1)
def shaky(marker: str) -> int:
    path = Path(marker)
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    print(f"attempt {n} says hello")
    print(f"attempt {n} complains", file=sys.stderr)
    if n == 1:
        raise RuntimeError("the first attempt fails")
    return n


@plait.workflow
def shaky_wf(marker: str) -> int:
    return shaky(marker=marker)


@plait.task(retries=0)
def broken(x: int) -> int:
    for i in range(3):
        print(f"line {i} before failing on {x}")
    raise ValueError(f"cannot take {x}")


@plait.workflow
def broken_wf(x: int) -> int:
    return broken(x=x)


@plait.task
def chatty(gate: str) -> str:
    print("first line", flush=True)
    deadline = time.monotonic() + 120
    while not Path(gate).exists():  # the test opens the gate once it has seen the first line
        if time.monotonic() > deadline:
            raise TimeoutError(f"{gate} was not created within 120s")
        time.sleep(0.05)
    print("last line", flush=True)
    return "done"


@plait.workflow
def chatty_wf(gate: str) -> str:
    return chatty(gate=gate)


@plait.task
def upto(n: int) -> list[int]:
    return list(range(n))


@plait.task
def echo(x: int) -> int:
    print(f"item {x} here")
    return x


@plait.workflow
def echo_map(n: int) -> list[int]:
    return plait.map(echo, over=upto(n=n))
'''


@pytest.fixture(autouse=True)
def _errors_without_tracebacks(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("PLAIT_DEBUG", raising=False)


@pytest.fixture(scope="module")
def log_flows(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The workflows above as a file of their own (on a cluster, shipped alone in the code archive)."""
    folder = tmp_path_factory.mktemp("log_flows")
    (folder / "log_flows.py").write_text(LOG_FLOWS)
    return str(folder / "log_flows.py")


def plait(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PLAIT, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=env)


def run_id(result: subprocess.CompletedProcess[str]) -> str:
    match = re.search(r"execution (\d{8}-\d{6}-[0-9a-f]{6})", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    return match.group(1)


def wait_until(predicate, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.05)


def the_execution(home: Path) -> str | None:
    """The id of the one execution in ``home``'s store, once it has been created."""
    db = home / "plait.db"
    if not db.exists():
        return None
    try:
        with sqlite3.connect(db) as conn:
            row = conn.execute("select id from executions").fetchone()
    except sqlite3.OperationalError:  # the schema is still being made
        return None
    return row[0] if row else None


def attempt_phases(home: Path, entity: str) -> list[str]:
    with sqlite3.connect(home / "plait.db") as conn:
        return [r[0] for r in conn.execute("select phase from events where entity = ? order by seq", (entity,))]


class Lines:
    """A process's stdout (or stderr), line by line, each line waited for with a deadline."""

    def __init__(self, process: subprocess.Popen[str], which: str = "stdout") -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        stream = getattr(process, which)
        assert stream is not None

        def pump() -> None:
            for line in stream:
                self.lines.put(line)
            self.lines.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def next(self, timeout: float) -> str | None:
        line = self.lines.get(timeout=timeout)
        if line is not None:
            self.seen.append(line)
        return line


# ---- the local platform ---------------------------------------------------------------------------


def test_a_finished_attempts_log_prints_its_stdout_on_stdout_and_its_stderr_on_stderr():
    xid = run_id(plait("run", f"{FLOWS}:noisy_wf", "--x", "3"))
    logs = plait("executions", "logs", xid, "noisy")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout == "hello from stdout 3\n"
    assert logs.stderr == "hello from stderr 3\n"


def test_a_failed_attempts_log_holds_what_it_printed_and_tail_keeps_the_last_lines(log_flows: str):
    run = plait("run", f"{log_flows}:broken_wf", "--x", "4")
    assert run.returncode == 1
    xid = run_id(run)
    logs = plait("executions", "logs", xid, "broken")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout == "".join(f"line {i} before failing on 4\n" for i in range(3))
    tail = plait("executions", "logs", xid, "broken", "--tail", "1")
    assert tail.stdout == "line 2 before failing on 4\n"


def test_the_latest_attempt_is_shown_by_default_and_attempt_picks_another(log_flows: str, tmp_path: Path):
    run = plait("run", f"{log_flows}:shaky_wf", "--marker", str(tmp_path / "marker"))
    assert run.returncode == 0, run.stdout + run.stderr
    xid = run_id(run)
    latest = plait("executions", "logs", xid, "shaky")
    assert (latest.stdout, latest.stderr) == ("attempt 2 says hello\n", "attempt 2 complains\n")
    first = plait("executions", "logs", xid, "shaky", "--attempt", "1")
    assert (first.stdout, first.stderr) == ("attempt 1 says hello\n", "attempt 1 complains\n")
    missing = plait("executions", "logs", xid, "shaky", "--attempt", "3")
    assert missing.returncode == 2
    assert "node shaky has no attempt 3; its attempts: 1, 2" in missing.stderr


def test_a_map_items_log_is_chosen_with_item(log_flows: str):
    run = plait("run", f"{log_flows}:echo_map", "--n", "4")
    assert run.returncode == 0, run.stdout + run.stderr
    xid = run_id(run)
    logs = plait("executions", "logs", xid, "map-echo", "--item", "2")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout == "item 2 here\n"
    whole = plait("executions", "logs", xid, "map-echo")
    assert whole.returncode == 2
    assert "node map-echo is a map over items 0 to 3; choose one with --item I" in whole.stderr
    beyond = plait("executions", "logs", xid, "map-echo", "--item", "9")
    assert "node map-echo has no item 9 that has started; items that have: 0, 1, 2, 3" in beyond.stderr
    not_a_map = plait("executions", "logs", xid, "upto", "--item", "0")
    assert "node upto is not a map, so it has no item 0; leave out --item" in not_a_map.stderr


def test_unknown_executions_and_nodes_are_clear_errors():
    xid = run_id(plait("run", f"{FLOWS}:noisy_wf", "--x", "1"))
    nowhere = plait("executions", "logs", "20990101-000000-abcdef", "noisy")
    assert nowhere.returncode == 2
    assert "no execution '20990101-000000-abcdef'" in nowhere.stderr and "Traceback" not in nowhere.stderr
    nobody = plait("executions", "logs", xid, "quiet")
    assert nobody.returncode == 2
    assert f"execution {xid} has no node 'quiet'; its nodes: noisy" in nobody.stderr


def test_show_gives_each_attempts_log_links():
    xid = run_id(plait("run", f"{FLOWS}:noisy_wf", "--x", "5"))
    shown = plait("executions", "show", xid, "--no-logs")
    assert shown.returncode == 0, shown.stderr
    line = next(x for x in shown.stdout.splitlines() if x.startswith("logs of noisy attempt 1:"))
    paths = re.findall(r"(stdout|stderr) (\S+)", line)
    assert [p[0] for p in paths] == ["stdout", "stderr"]
    assert Path(paths[0][1]).read_text() == "hello from stdout 5\n"
    assert Path(paths[1][1]).read_text() == "hello from stderr 5\n"


def test_a_running_local_python_attempt_has_no_log_yet_and_follow_prints_it_when_it_ends(
        log_flows: str, tmp_path: Path, plait_home: Path):
    gate = tmp_path / "gate"
    run = subprocess.Popen([*PLAIT, "run", f"{log_flows}:chatty_wf", "--gate", str(gate)], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        xid = wait_until(lambda: the_execution(plait_home), "the execution created")
        wait_until(lambda: "running" in attempt_phases(plait_home, "chatty/1"), "the attempt running")
        now = plait("executions", "logs", xid, "chatty")
        assert now.returncode == 2
        assert "node chatty attempt 1 runs in a local worker process" in now.stderr
        assert "no log yet (--follow waits for it)" in now.stderr
        follow = subprocess.Popen([*PLAIT, "executions", "logs", xid, "chatty", "--follow"], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        said = Lines(follow, "stderr")
        assert "no log yet; waiting" in (said.next(timeout=60) or "")
        assert follow.poll() is None and not gate.exists()
        gate.touch()
        assert follow.wait(60) == 0, said.seen
        assert follow.stdout is not None and follow.stdout.read() == "first line\nlast line\n"
        assert run.wait(60) == 0
    finally:
        run.kill()


# ---- the kubernetes platform (the emulated cluster) ----------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("kubernetes", reason="the Kubernetes platform needs the kubernetes client")
    from k8s_cluster import Cluster

    with Cluster(tmp_path_factory.mktemp("cluster")) as c:
        yield c


def test_an_ended_pod_attempts_log_is_what_the_platform_kept_after_deleting_the_pod(cluster, tmp_path: Path):
    home = tmp_path / "home"
    env = cluster.engine_env(home)
    run = plait("run", f"{FLOWS}:noisy_wf", "--x", "7", "--platform", "kubernetes", env=env, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    xid = run_id(run)
    wait_until(lambda: not cluster.pods(), "the attempt's pod deleted once its log was read")
    logs = plait("executions", "logs", xid, "noisy", env=env)
    assert logs.returncode == 0, logs.stderr
    # The pod's log mixes both streams; the engine kept it as the attempt's stdout.log.
    assert "hello from stdout 7\n" in logs.stdout and "hello from stderr 7\n" in logs.stdout
    shown = plait("executions", "show", xid, "--no-logs", env=env)
    assert re.search(r"logs of noisy attempt 1: stdout \S+/noisy/1/stdout\.log", shown.stdout), shown.stdout


def test_follow_streams_a_running_pods_log_and_exits_when_the_pod_ends(cluster, log_flows: str, tmp_path: Path):
    home = tmp_path / "home"
    env = cluster.engine_env(home)
    gate = tmp_path / "gate"
    run = subprocess.Popen([*PLAIT, "run", f"{log_flows}:chatty_wf", "--gate", str(gate), "--platform",
                            "kubernetes"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    follow = None
    try:
        xid = wait_until(lambda: the_execution(home), "the execution created")
        # Started before the pod may exist: following waits for the pod's container, then streams.
        follow = subprocess.Popen([*PLAIT, "executions", "logs", xid, "chatty", "--follow"], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = Lines(follow)
        assert lines.next(timeout=90) == "first line\n"
        # The task is still waiting at its gate: the line came from the running pod, through the API.
        assert not gate.exists() and run.poll() is None
        assert [p for p in cluster.pods() if p["metadata"]["labels"].get("plait.dev/node") == "chatty"]
        now = plait("executions", "logs", xid, "chatty", env=env)
        assert now.returncode == 0, now.stderr
        assert now.stdout == "first line\n"
        assert follow.poll() is None, "following stopped while the pod still runs"
        gate.touch()
        assert lines.next(timeout=60) == "last line\n"
        assert lines.next(timeout=60) is None  # the stream ended: the pod's container exited
        assert follow.wait(30) == 0, follow.stderr.read() if follow.stderr else ""
        assert run.wait(120) == 0
    finally:
        for process in (run, follow):
            if process is not None and process.poll() is None:
                process.kill()
