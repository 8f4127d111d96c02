"""Tenant tokens shared through a real redis-server: several engines, expiry after a crash."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import plait
import pytest
from plait.builtin.python_task import PythonTask
from plait.engine import Engine
from plait.plugins import Registry, load_registry
from plait.settings import Settings
from plait.tokens import PoolConfig, TokenConfig
from plait.tokens_redis import RedisTokenManager
from test_tokens import PooledPython, flood, most_at_once


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("these tests need redis-server: apt-get install redis-server (`make test` installs it)")
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path_factory.mktemp("redis"))], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def url(redis_url):
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    return redis_url


def manager(url: str, capacity: int = 2, lease_seconds: float = 30.0, **weights: float) -> RedisTokenManager:
    config = TokenConfig(pools={"svc": PoolConfig("svc", capacity)},
                         weights={t.replace("_", "/"): w for t, w in weights.items()})
    return RedisTokenManager(url, config, lease_seconds=lease_seconds)


def test_two_engines_share_one_pool_and_a_release_goes_to_the_other_engines_waiter(url):
    one, two = manager(url), manager(url)
    assert one.try_acquire("svc", "a/dev", "one-1")[0]
    assert two.try_acquire("svc", "b/dev", "two-1")[0]
    granted, place, queued = two.try_acquire("svc", "b/dev", "two-2")
    assert not granted and (place, queued) == (1, 1)
    assert one.snapshot()["svc"]["used"] == 2
    one.release("svc", "one-1")
    assert two.try_acquire("svc", "b/dev", "two-2")[0], "the freed token did not go to the waiting request"
    assert two.try_acquire("svc", "b/dev", "two-2")[0], "acquiring again with the same lease is a no-op"
    assert two.snapshot()["svc"] == {"capacity": 2, "rate": None, "used": 2, "holders": {"b/dev": 2},
                                     "waiters": {}}


def test_a_flooding_tenant_gets_no_more_than_its_share_once_another_waits(url):
    loud, quiet = manager(url, capacity=4), manager(url, capacity=4)
    for i in range(12):
        loud.try_acquire("svc", "loud/dev", f"loud-{i}")
    assert loud.snapshot()["svc"]["holders"] == {"loud/dev": 4}  # idle capacity is used
    for i in range(3):
        quiet.try_acquire("svc", "quiet/dev", f"quiet-{i}")
    for i in range(4):  # as the loud tenant's work ends, the quiet one catches up to half
        loud.release("svc", f"loud-{i}")
    assert loud.snapshot()["svc"]["holders"] == {"loud/dev": 2, "quiet/dev": 2}


def test_a_request_over_the_capacity_fails_at_once(url):
    with pytest.raises(plait.PlaitError, match="can never be granted"):
        manager(url).try_acquire("svc", "a/dev", "big", count=3)


HOLDER = """
import os, sys, time
sys.path.insert(0, {tests!r})
from plait.tokens import PoolConfig, TokenConfig
from plait.tokens_redis import RedisTokenManager
m = RedisTokenManager({url!r}, TokenConfig(pools={{"svc": PoolConfig("svc", 2)}}), lease_seconds=1.0)
assert m.try_acquire("svc", "a/dev", "dead-1")[0] and m.try_acquire("svc", "a/dev", "dead-2")[0]
print("holding", flush=True)
time.sleep(600)
"""


def test_tokens_of_an_engine_killed_with_sigkill_return_after_the_lease_time(url):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(url=url, tests=str(Path(__file__).parent))],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    survivor = manager(url, lease_seconds=30)
    assert not survivor.try_acquire("svc", "b/dev", "alive")[0]
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    killed_at = time.monotonic()
    while not survivor.try_acquire("svc", "b/dev", "alive")[0]:
        assert time.monotonic() - killed_at < 10, "the dead engine's tokens never came back"
        time.sleep(0.1)
    assert 0.5 < time.monotonic() - killed_at < 5
    snapshot = survivor.snapshot()["svc"]
    assert snapshot["used"] == 1 and snapshot["holders"] == {"b/dev": 1}, "a token leaked"


def test_two_engines_running_workflows_never_exceed_the_shared_pool(url, tmp_path, monkeypatch):
    monkeypatch.setenv("PLAIT_TOKENS_URL", url)
    monkeypatch.setenv("PLAIT_POOLS", "svc:test=2")
    log = tmp_path / "log"
    results = []

    shared = load_registry()
    monkeypatch.setitem(shared.task_types, "pooled", PooledPython())  # for compiling the workflow
    _ = flood.spec

    def one_engine(home: str) -> None:
        # Each engine, as in its own process, has its own task type instances and worker pool.
        registry = Registry(task_types={"python": PythonTask(), "pooled": PooledPython()},
                            transformers=shared.transformers)
        engine = Engine(Settings.from_env(home), registry=registry)
        try:
            results.append(plait.run(flood, {"n": 4, "log": str(log), "seconds": 0.3}, engine=engine))
        finally:
            engine.close()

    first = threading.Thread(target=one_engine, args=(str(tmp_path / "one"),))
    first.start()
    time.sleep(0.5)
    second = threading.Thread(target=one_engine, args=(str(tmp_path / "two"),))
    second.start()
    first.join(120)
    second.join(120)
    assert [r.phase.value for r in results] == ["succeeded", "succeeded"]
    assert most_at_once(log) == 2
    assert RedisTokenManager(url).snapshot()["svc:test"]["used"] == 0


def test_plait_pools_reads_the_shared_pools_from_redis(url, monkeypatch):
    holder = manager(url, capacity=2)
    holder.try_acquire("svc", "team/prod", "one")
    holder.try_acquire("svc", "team/prod", "two")
    holder.try_acquire("svc", "other/dev", "three")
    monkeypatch.setenv("PLAIT_TOKENS_URL", url)
    out = subprocess.run([sys.executable, "-m", "plait.cli", "pools"], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "COLUMNS": "200"}).stdout
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line.count("│") > 2]
    assert ["svc", "2", "", "other/dev", "", "1"] in rows
    assert ["", "", "", "team/prod", "2", ""] in rows
