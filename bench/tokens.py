"""Tenant tokens: acquire+release throughput, and fairness in the saturation scenario.

    .venv/bin/python bench/tokens.py            # needs redis-server on PATH (make test installs it)

Throughput: in-process (the allocator behind the asyncio manager), and through a real
redis-server from 1 and from 4 processes at once. Fairness: the scenario of the issue, three
tenants (weights 1, 1, 2) submitting 60 one-second queries each to a pool of 4 with a fourth
tenant idle, simulated in virtual time; Jain's index of each tenant's throughput divided by
its weight, and the worst wait relative to what a perfectly fair share would give.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, table

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

from plait.tokens.allocator import jain_index  # noqa: E402
from plait.tokens.config import PoolConfig, TokenConfig
from plait.tokens.manager import TokenManager
from plait.tokens.redis import RedisTokenManager  # noqa: E402

N_LOCAL = 200_000
N_REDIS = 5_000


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


def redis_worker(url: str, n: int, tag: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    manager = RedisTokenManager(url, TokenConfig(pools={"svc": PoolConfig("svc", 1000)}))
    started = time.perf_counter()
    for i in range(n):
        assert manager.try_acquire("svc", f"{tag}/dev", f"{tag}-{i}")[0]
        manager.release("svc", f"{tag}-{i}")
    out.put(time.perf_counter() - started)


def through_redis(url: str, processes: int) -> float:
    out: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    workers = [multiprocessing.Process(target=redis_worker, args=(url, N_REDIS, f"p{i}", out))
               for i in range(processes)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    took = time.perf_counter() - started
    return processes * N_REDIS / took


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
    local = in_process()
    proc, url = start_redis()
    try:
        one = through_redis(url, 1)
        four = through_redis(url, 4)
    finally:
        proc.terminate()
    jain, worst = fairness()
    print(f"tenant tokens, {machine()}")
    print(table(["measure", "value"], [
        ["acquire+release per second, in-process", f"{local:,.0f}"],
        ["acquire+release per second, Redis, 1 process", f"{one:,.0f}"],
        ["acquire+release per second, Redis, 4 processes", f"{four:,.0f}"],
        ["Jain's index, weights 1/1/2 under saturation", f"{jain:.4f}"],
        ["worst tenant's finish / its fair-share finish", f"{worst:.2f}"],
    ]))


if __name__ == "__main__":
    main()
