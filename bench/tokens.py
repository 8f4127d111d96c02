"""Tenant tokens: acquire+release throughput, and fairness in the saturation scenario.

    .venv/bin/python bench/tokens.py                 # needs redis-server on PATH (make test installs it)
    .venv/bin/python bench/tokens.py --against REV   # and the Redis paths of git revision REV, interleaved

Throughput: in-process (the allocator behind the asyncio manager); through a real
redis-server one pair at a time (``try_acquire`` then ``release``: two script calls, two round
trips); and as an engine does it, many attempts at once on one event loop (``await acquire``,
then ``release``), from one engine process and from four. Each runs in processes of its own;
with ``--against``, that revision's ``core/`` runs the same workloads in the same rounds,
alternating with this tree's, on the same Redis.
Fairness: the scenario of the issue, three tenants (weights 1, 1, 2) submitting 60 one-second
queries each to a pool of 4 with a fourth tenant idle, simulated in virtual time; Jain's index
of each tenant's throughput divided by its weight, and the worst wait relative to what a
perfectly fair share would give.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import machine, table

ROOT = Path(__file__).parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "tokens")]  # test_tokens.simulate

from plait.tokens.allocator import jain_index  # noqa: E402
from plait.tokens.config import PoolConfig, TokenConfig  # noqa: E402
from plait.tokens.manager import TokenManager  # noqa: E402

N_LOCAL = 200_000
N_ONE_BY_ONE = 5_000
N_ENGINE = 10_000
AT_ONCE = 100
"""Attempts of one engine holding or asking for a token at any moment."""
ROUNDS = 3


def in_process() -> float:
    manager = TokenManager(TokenConfig(pools={"svc": PoolConfig("svc", 64)}))

    async def loop() -> float:
        started = time.perf_counter()
        for i in range(N_LOCAL):
            lease = f"l{i}"
            await manager.acquire("svc", "a/dev", lease)
            manager.release("svc", lease)
        return N_LOCAL / (time.perf_counter() - started)

    return asyncio.run(loop())


def manager_of(core: str, url: str) -> object:
    """A Redis token manager of the plait under ``core`` (checked: not the installed one)."""
    import plait
    from plait.tokens.redis import RedisTokenManager

    assert Path(plait.__file__).is_relative_to(core), f"imported {plait.__file__}, not the plait of {core}"
    return RedisTokenManager(url, TokenConfig(pools={"svc": PoolConfig("svc", 1000)}))


def one_by_one(manager: Any, tag: str) -> int:
    """One pair at a time, each call waiting for its answer: two script calls, two round trips."""
    for i in range(N_ONE_BY_ONE):
        assert manager.try_acquire("svc", f"{tag}/dev", f"{tag}-{i}")[0]
        manager.release("svc", f"{tag}-{i}")
    return N_ONE_BY_ONE


def engine(manager: Any, tag: str) -> int:
    """As an engine does: AT_ONCE attempts on one loop, each acquiring then releasing in turn."""
    async def attempts(first: int) -> None:
        for i in range(first, N_ENGINE, AT_ONCE):
            await manager.acquire("svc", f"{tag}/dev", f"{tag}-{i}")
            manager.release("svc", f"{tag}-{i}")

    async def run() -> None:
        await asyncio.gather(*(attempts(k) for k in range(AT_ONCE)))
        manager.detach()  # as an execution's end does: the last releases are in Redis when it returns

    asyncio.run(run())
    return N_ENGINE


WORKLOADS = {"one pair at a time": one_by_one, "engine": engine}


def worker(workload: str, core: str, url: str, tag: str) -> None:
    """Print the seconds ``workload`` took in this process, and check that every token came back."""
    manager: Any = manager_of(core, url)
    started = time.perf_counter()
    WORKLOADS[workload](manager, tag)
    print(time.perf_counter() - started)
    holders = manager.snapshot()["svc"]["holders"]
    assert f"{tag}/dev" not in holders, f"releases were lost: {holders}"
    manager.close()


def pairs_per_second(url: str, workload: str, processes: int, core: Path, round_: int) -> float:
    """Acquire+release pairs per second of ``processes`` processes at once, running ``core``'s plait."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(core), str(ROOT / "bench")])}
    workers = [subprocess.Popen([sys.executable, __file__, "--worker", workload, str(core), url,
                                 f"r{round_}p{i}-{core.parent.name}-{workload[0]}"],
                                env=env, stdout=subprocess.PIPE, text=True) for i in range(processes)]
    outs = [w.communicate()[0] for w in workers]
    if any(w.returncode for w in workers):
        sys.exit(f"a {workload} process failed under {core}")
    pairs = N_ONE_BY_ONE if workload == "one pair at a time" else N_ENGINE
    return processes * pairs / max(float(out) for out in outs)


def checkout(rev: str) -> Path:
    """``rev``'s core/ in a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="plait-bench-core-")) / rev.replace("/", "_")
    folder.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "core/plait"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder), "--strip-components=1"], input=archive.stdout, check=True)
    return folder


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    server = shutil.which("redis-server")
    if server is None:
        sys.exit("bench/tokens.py needs redis-server: apt-get install redis-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", tempfile.mkdtemp()], stdout=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, f"redis://127.0.0.1:{port}/0"


def fairness() -> tuple[float, float]:
    from test_tokens import simulate

    weights = {"a/dev": 1.0, "b/dev": 1.0, "c/dev": 2.0, "idle/dev": 1.0}
    arrivals = {t: (0.0, 60) for t in ("a/dev", "b/dev", "c/dev")}
    held, _ = simulate(4, arrivals, weights)
    saturated_until = 30.0  # all three are backlogged until the weight-2 tenant runs out at t=30
    usage = {t: sum(n for at, n in held[t] if 1 <= at < saturated_until) for t in arrivals}
    jain = jain_index([usage[t] / weights[t] for t in usage])
    # worst wait: the last query of each tenant finishes at T; a fair share alone would take
    # queries / (capacity * weight / total weight) seconds
    total = sum(weights[t] for t in arrivals)
    ratios = []
    for t in arrivals:
        finish = max(at for at, n in held[t] if n) + 1.0
        fair = 60 / (4 * weights[t] / total)
        ratios.append(finish / fair)
    return jain, max(ratios)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--against", metavar="REV", help="also run this git revision's Redis paths, interleaved")
    parser.add_argument("--worker", nargs=4, metavar=("WORKLOAD", "CORE", "URL", "TAG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    cores = {"this tree": ROOT / "core"}
    if args.against:
        cores = {args.against: checkout(args.against), **cores}
    local = in_process()
    proc, url = start_redis()
    load = os.getloadavg()
    runs: dict[tuple[str, int, str], list[float]] = {}
    try:
        for round_ in range(ROUNDS):
            for workload, processes in (("one pair at a time", 1), ("engine", 1), ("engine", 4)):
                for name, core in cores.items():
                    runs.setdefault((workload, processes, name), []).append(
                        pairs_per_second(url, workload, processes, core, round_))
    finally:
        proc.terminate()
    jain, worst = fairness()
    load = tuple(max(a, b) for a, b in zip(load, os.getloadavg(), strict=True))
    print(f"tenant tokens, {machine()}, load average (1, 5, 15 min, highest seen) "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    rows = [["acquire+release per second, in-process", f"{local:,.0f}"]]
    for (workload, processes, name), values in runs.items():
        what = ("one process, one pair at a time" if workload == "one pair at a time" else
                f"{'one engine process' if processes == 1 else f'{processes} engine processes'}, "
                f"{AT_ONCE} attempts each")
        rows.append([f"acquire+release per second, Redis, {what} ({name})",
                     f"{statistics.median(values):,.0f} (runs: {', '.join(f'{v:,.0f}' for v in values)})"])
    rows += [["Jain's index, weights 1/1/2 under saturation", f"{jain:.4f}"],
             ["worst tenant's finish / its fair-share finish", f"{worst:.2f}"]]
    print(table(["measure", "value"], rows))


if __name__ == "__main__":
    main()
