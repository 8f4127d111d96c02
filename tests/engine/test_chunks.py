"""A map's quick items run in chunks: many items to one message, each still its own attempt.

The chunks go through the real worker pool (or inline); ``Counted`` is the local platform
itself, noting the size of each chunk it is handed, so a test can see that chunking happened.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import chunk_flows
import plait
import pytest
from plait.engine import build_engine
from plait.engine.execution import RunOptions
from plait.engine.graph import CHUNK_S, MAX_CHUNK, _MapNode
from plait.model.settings import Settings
from plait.model.status import Phase
from plait.platforms.local.platform import LocalPlatform
from plait.plugins.platform import ResultCallback
from plait.plugins.registry import load_registry
from plait.service.run import encode_inputs
from plait.storage.events import replay


class Counted(LocalPlatform):
    """The local platform, keeping the size of every chunk of Python attempts it runs."""

    name = "counted"

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[int] = []
        self.results = 0
        self.on_result: Callable[[int], None] = lambda results: None
        """Called with the count of results so far, as each comes in."""

    def submit_python_chunk(self, jobs: list[tuple[str, dict[str, Any], ResultCallback]]) -> None:
        self.chunks.append(len(jobs))
        super().submit_python_chunk([(job, payload, self._counting(done)) for job, payload, done in jobs])

    def _counting(self, done: ResultCallback) -> ResultCallback:
        def counted(result: dict[str, Any]) -> None:
            self.results += 1
            self.on_result(self.results)
            done(result)

        return counted


@pytest.fixture
def counted(plait_home: Path):
    platform = Counted()
    registry = dataclasses.replace(load_registry(), platforms={**load_registry().platforms, "counted": platform})
    engine = build_engine(Settings.from_env(str(plait_home)), registry=registry)
    yield engine, platform
    engine.close()
    platform.close()


def item_events(engine: Any, execution_id: str, node: str) -> list[Any]:
    return [e for e in engine.store.events(execution_id) if e.kind == "item" and e.data["node"] == node]


def test_quick_items_go_to_the_workers_in_chunks_and_each_is_recorded_as_its_own_attempt(counted):
    engine, platform = counted
    n = 3000
    done = plait.run(chunk_flows.doubled, {"n": n}, options=RunOptions(platform="counted"), engine=engine)
    assert done.phase == Phase.SUCCEEDED, done.error
    assert done.outputs == {"o0": [2 * i for i in range(n)]}
    assert sum(platform.chunks) == n
    assert max(platform.chunks) > 10, f"quick items were not chunked: {platform.chunks[:20]}"
    assert len(platform.chunks) < n / 5
    events = item_events(engine, done.execution_id, "map-double")
    phases = Counter((e.data["index"], e.phase) for e in events)
    assert all(phases[(i, "running")] == 1 and phases[(i, "succeeded")] == 1 for i in range(n))
    assert {e.data["attempt"] for e in events} == {1}
    running = [e for e in events if e.phase == "running"]
    assert {e.data["handle"]["platform"] for e in running} == {"counted"}
    stored = replay(done.execution_id, engine.store.events(done.execution_id))
    assert stored.phase == "succeeded"
    assert {k: v for k, v in stored.nodes["map-double"].item_counts.items() if v} == {"succeeded": n}


def test_items_that_take_long_go_one_to_a_chunk():
    map_node = _MapNode.__new__(_MapNode)
    map_node.window = 4
    map_node.item_seconds = None
    assert map_node.chunk_size(1000) == 1, "nothing measured yet: one item"
    map_node.item_seconds = 2.0
    assert map_node.chunk_size(1000) == 1
    map_node.item_seconds = CHUNK_S / 20
    assert map_node.chunk_size(1000) == 20
    map_node.item_seconds = 1e-6
    assert map_node.chunk_size(100_000) == MAX_CHUNK
    assert map_node.chunk_size(40) == 10, "the last items are shared among the window's chunks"


@pytest.mark.parametrize("inline", [False, True], ids=["pool", "inline"])
def test_an_item_that_fails_in_a_chunk_is_retried_on_its_own(counted, tmp_path, fast_retries, inline):
    engine, platform = counted
    n, at = 400, 123
    done = plait.run(chunk_flows.doubled_fails_once, {"n": n, "at": at, "marker": str(tmp_path / "failed")},
                     options=fast_retries(platform="counted", inline=inline), engine=engine)
    assert done.phase == Phase.SUCCEEDED, done.error
    assert done.outputs == {"o0": [2 * i for i in range(n)]}
    events = item_events(engine, done.execution_id, "map-fails_once_at")
    tried = [(e.data["attempt"], e.phase) for e in events if e.data["index"] == at]
    assert tried == [(1, "running"), (1, "failed"), (2, "running"), (2, "succeeded")]
    failed = next(e for e in events if e.data["index"] == at and e.phase == "failed")
    assert f"item {at} fails its first attempt" in failed.data["message"]
    assert {e.data["attempt"] for e in events if e.data["index"] != at} == {1}
    if not inline:
        assert max(platform.chunks) > 1, "the items were not chunked: the test proves nothing"


def test_an_item_that_keeps_failing_fails_the_map_naming_it(counted):
    engine, _ = counted
    done = plait.run(chunk_flows.doubled_always_fails, {"n": 500, "at": 77}, options=RunOptions(platform="counted"),
                     engine=engine)
    assert done.phase == Phase.FAILED
    assert done.failed_node == "map-always_fails_at"
    assert "1 of 500 items failed" in done.error and "item 77: attempt 1 failed: ValueError: item 77 always fails" \
        in done.error


def test_a_worker_that_dies_mid_chunk_loses_no_item(counted, tmp_path, fast_retries):
    engine, platform = counted
    n, at = 2000, 1500
    done = plait.run(chunk_flows.doubled_worker_dies, {"n": n, "at": at, "marker": str(tmp_path / "died")},
                     options=fast_retries(platform="counted"), engine=engine)
    assert done.phase == Phase.SUCCEEDED, done.error
    assert done.outputs == {"o0": [2 * i for i in range(n)]}
    events = item_events(engine, done.execution_id, "map-kills_its_worker_at")
    lost = sorted({e.data["index"] for e in events if e.phase == "failed"})
    assert at in lost and len(lost) > 1, f"the dead worker's chunk held more items than the one that killed it: {lost}"
    failed = next(e for e in events if e.phase == "failed")
    assert "the worker process running this attempt died (exit code 3)" in failed.data["message"]
    succeeded = Counter(e.data["index"] for e in events if e.phase == "succeeded")
    assert sorted(succeeded) == list(range(n)) and set(succeeded.values()) == {1}
    assert all(e.data["attempt"] == 2 for e in events if e.phase == "succeeded" and e.data["index"] in lost)


@pytest.mark.parametrize("inline", [False, True], ids=["pool", "inline"])
def test_each_chunked_item_keeps_its_own_output_log(counted, inline):
    engine, platform = counted
    done = plait.run(chunk_flows.chatty, {"n": 300}, options=RunOptions(platform="counted", inline=inline),
                     engine=engine)
    assert done.phase == Phase.SUCCEEDED, done.error
    ended = [e for e in item_events(engine, done.execution_id, "map-says_its_index") if e.phase == "succeeded"]
    assert len(ended) == 300
    for e in ended:
        i = e.data["index"]
        assert Path(e.data["logs"]["stdout"]).read_text() == f"item {i} here" + "!" * (i % 5) + "\n"
    if not inline:
        assert max(platform.chunks) > 1, "the items were not chunked: the test proves nothing"


def test_items_with_a_timeout_are_submitted_one_at_a_time(counted):
    engine, platform = counted
    done = plait.run(chunk_flows.doubled_with_a_timeout, {"n": 200}, options=RunOptions(platform="counted"),
                     engine=engine)
    assert done.phase == Phase.SUCCEEDED, done.error
    # a chunk's queued items would run out their timeouts waiting for the ones before them
    assert platform.chunks == [], "items with a timeout went in chunks"


def test_cancelling_mid_chunk_ends_every_started_item_as_it_ended_or_aborted(counted):
    engine, platform = counted
    literals = encode_inputs(chunk_flows.doubled, {"n": 20_000}, engine)

    async def run_and_cancel() -> Any:
        running = asyncio.create_task(engine.run(chunk_flows.doubled.spec, literals, RunOptions(platform="counted")))
        # Ctrl-C while results stream in: the cancel reaches the chunks a few loop turns later,
        # and results that come in meanwhile must be recorded, not left "running".
        platform.on_result = lambda results: results == 4000 and running.cancel()
        return await running

    result = asyncio.run(run_and_cancel())
    assert result.phase == Phase.ABORTED
    endings: dict[int, list[str]] = {}
    for e in item_events(engine, result.execution_id, "map-double"):
        endings.setdefault(e.data["index"], []).append(e.phase)
    assert 4000 <= len(endings) < 20_000, "the cancel did not come mid-map: the test proves nothing"
    left_running = sorted(i for i, phases in endings.items() if phases == ["running"])
    assert not left_running, f"{len(left_running)} items are recorded as running forever: {left_running[:10]}"
    assert {tuple(phases) for phases in endings.values()} <= {("running", "succeeded"), ("running", "aborted")}
    assert sum(phases[-1] == "aborted" for phases in endings.values()) > 0
    assert sum(phases[-1] == "succeeded" for phases in endings.values()) >= 4000
