"""Engine behaviour on the local platform, with real worker processes and SQLite."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import cli_flows
import flows
import plait
import pytest
import readme_flows
from plait.engine import build_engine
from plait.engine.execution import RunOptions
from plait.model.settings import Settings
from plait.model.status import Phase
from plait.service.run import encode_inputs
from plait.storage.events import Event, EventStore, replay


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.parametrize("inline", [False, True], ids=["pool", "inline"])
def test_runs_a_graph_and_returns_typed_outputs(inline):
    execution = plait.run(flows.arithmetic, {"a": 3}, options=RunOptions(inline=inline))
    assert execution.phase == Phase.SUCCEEDED
    assert execution.outputs == {"o0": 10}


def test_calling_a_workflow_as_a_function_runs_it():
    assert flows.arithmetic(a=1, b=1) == 4


def test_tasks_called_outside_a_workflow_are_plain_python():
    assert flows.add(a=2, b=3) == 5
    assert flows.double(21) == 42


def test_map_fans_out_and_keeps_item_order():
    execution = plait.run(flows.fan_out, {"n": 50})
    assert execution.outputs == {"o0": 2 * sum(range(50))}
    node = execution.result.state.nodes["map-double"]
    assert node.items == 50 and node.item_counts["succeeded"] == 50


def test_nested_workflows_run_as_sub_graphs():
    execution = plait.run(flows.nested, {"a": 2})
    assert execution.outputs == {"o0": 12}
    assert execution.result.state.nodes["arithmetic.add"].phase == "succeeded"


def test_named_outputs():
    execution = plait.run(flows.two_outputs, {"n": 4})
    assert execution.outputs == {"count": 4, "mean": 1.5}


def test_user_errors_are_retried_within_the_user_budget(tmp_path, fast_retries):
    marker = tmp_path / "calls"
    execution = plait.run(flows.flaky_wf, {"marker": str(marker), "fail_times": 2}, options=fast_retries())
    assert execution.phase == Phase.SUCCEEDED and execution.outputs == {"o0": 3}
    attempts = execution.result.state.nodes["flaky"].attempts
    assert [a.phase for a in attempts] == ["failed", "failed", "succeeded"]
    assert "flaky failure number 1" in attempts[0].message


def test_a_node_fails_once_the_user_budget_is_spent(tmp_path, fast_retries):
    marker = tmp_path / "calls"
    execution = plait.run(flows.flaky_wf, {"marker": str(marker), "fail_times": 10}, options=fast_retries())
    assert execution.phase == Phase.FAILED
    assert execution.failed_node == "flaky"
    assert lines(marker) == 3  # one attempt plus retries=2
    assert "flaky failure number 3" in execution.error


def test_permanent_errors_are_not_retried(tmp_path, fast_retries):
    marker = tmp_path / "calls"
    execution = plait.run(flows.permanent_wf, {"marker": str(marker)}, options=fast_retries())
    assert execution.phase == Phase.FAILED
    assert lines(marker) == 1
    assert "not retryable" in execution.error and "can never work" in execution.error


def test_a_dead_worker_is_a_system_error_with_its_own_budget(tmp_path, fast_retries):
    marker = tmp_path / "calls"
    execution = plait.run(flows.dies_wf, {"marker": str(marker)}, options=fast_retries())
    assert execution.phase == Phase.SUCCEEDED and execution.outputs == {"o0": 42}
    attempts = execution.result.state.nodes["dies"].attempts
    assert [a.error_kind for a in attempts[:2]] == ["system", "system"]
    assert "worker process" in attempts[0].message


def test_timeouts_abort_the_attempt_and_retry(tmp_path, fast_retries):
    marker = tmp_path / "calls"
    engine = build_engine()
    try:
        # Start the worker processes first: on a loaded machine their start-up alone can take
        # longer than the task's 2 s timeout, and the body would never write its marker.
        plait.run(flows.arithmetic, {"a": 1}, engine=engine)
        started = time.monotonic()
        execution = plait.run(flows.sleepy_wf, {"seconds": 30.0, "marker": str(marker)}, options=fast_retries(),
                              engine=engine)
    finally:
        engine.close()
    assert time.monotonic() - started < 15
    assert execution.phase == Phase.FAILED
    attempts = execution.result.state.nodes["sleepy"].attempts
    assert [a.phase for a in attempts] == ["timed_out", "timed_out"]
    assert lines(marker) == 2


def test_cache_hits_skip_the_work_and_overwrite_refreshes(tmp_path):
    marker = tmp_path / "calls"
    inputs = {"x": 7, "marker": str(marker)}
    first = plait.run(flows.cached_wf, inputs)
    second = plait.run(flows.cached_wf, inputs)
    assert first.outputs == second.outputs == {"o0": 49}
    assert lines(marker) == 1
    assert second.result.state.nodes["cached_square"].cached
    plait.run(flows.cached_wf, inputs, options=RunOptions(overwrite_cache=True))
    assert lines(marker) == 2
    plait.run(flows.cached_wf, {"x": 8, "marker": str(marker)})
    assert lines(marker) == 3


@pytest.mark.parametrize("inline", [False, True], ids=["pool", "inline"])
def test_a_retried_attempt_restores_the_checkpoint(tmp_path, fast_retries, inline):
    log = tmp_path / "log"
    execution = plait.run(flows.resumable_wf, {"steps": 5, "fail_at": 3, "log": str(log)},
                          options=fast_retries(inline=inline))
    assert execution.outputs == {"o0": [0, 1, 2, 3, 4]}
    assert log.read_text().splitlines() == ["attempt 1 starts at 0", "attempt 2 starts at 3"]


def test_map_reports_failed_items_by_index_and_honours_min_success_ratio(fast_retries):
    execution = plait.run(flows.partial_map, {"n": 10, "bad": [3, 7]}, options=fast_retries())
    assert execution.phase == Phase.SUCCEEDED
    assert execution.outputs["o0"] == [0, 1, 2, None, 4, 5, 6, None, 8, 9]
    node = execution.result.state.nodes["map-fail_on"]
    assert sorted(node.item_errors) == [3, 7]
    assert "item 3 is bad" in node.item_errors[3]


def test_map_fails_when_too_many_items_fail(fast_retries):
    execution = plait.run(flows.strict_map, {"n": 10, "bad": [4]}, options=fast_retries())
    assert execution.phase == Phase.FAILED
    assert execution.failed_node == "map-fail_on"
    assert "item 4" in execution.error and "item 4 is bad" in execution.error


def test_fail_fast_aborts_running_siblings(tmp_path, fast_retries):
    marker = tmp_path / "calls"
    execution = plait.run(flows.branches, {"x": 1, "seconds": 20.0, "marker": str(marker)}, options=fast_retries())
    assert execution.phase == Phase.FAILED and execution.failed_node == "boom"
    nodes = execution.result.state.nodes
    assert nodes["slow"].phase == "aborted"
    assert nodes["slow"].attempts[-1].phase == "aborted"


def test_keep_going_runs_independent_branches_and_skips_dependants(tmp_path, fast_retries):
    marker = tmp_path / "calls"
    execution = plait.run(flows.branches, {"x": 1, "seconds": 0.2, "marker": str(marker)},
                          options=fast_retries(fail_fast=False))
    assert execution.phase == Phase.FAILED and execution.failed_node == "boom"
    nodes = execution.result.state.nodes
    assert nodes["slow"].phase == "succeeded"
    assert nodes["double"].phase == "skipped" and nodes["add"].phase == "skipped"


def test_cancelling_an_execution_aborts_and_cleans_up_every_attempt(tmp_path):
    marker = tmp_path / "calls"
    engine = build_engine()
    spec = flows.two_slow.spec
    literals = encode_inputs(flows.two_slow, {"seconds": 60.0, "marker": str(marker)}, engine)

    async def run_then_cancel():
        task = asyncio.create_task(engine.run(spec, literals))
        while lines(marker) < 2:
            await asyncio.sleep(0.05)
        task.cancel()
        return await task

    try:
        result = asyncio.run(run_then_cancel())
        assert result.phase == Phase.ABORTED
        stored = replay(result.execution_id, engine.store.events(result.execution_id))
        assert stored.phase == "aborted"
        for node_id in ("slow", "slow-2"):
            assert stored.nodes[node_id].phase == "aborted"
            assert stored.nodes[node_id].attempts[-1].phase == "aborted"
        assert engine.store.execution(result.execution_id)["phase"] == "aborted"
        python = engine.registry.task_types["python"]
        assert len(python._placed) == 0, "cleanup was not called for every attempt"
    finally:
        engine.close()


def test_replaying_the_events_rebuilds_the_live_state(tmp_path, fast_retries):
    marker = tmp_path / "calls"
    engine = build_engine()
    try:
        execution = plait.run(flows.flaky_wf, {"marker": str(marker), "fail_times": 1},
                              options=fast_retries(), engine=engine)
        live = execution.result.state.snapshot()
        replayed = replay(execution.execution_id, engine.store.events(execution.execution_id)).snapshot()
        assert replayed == live
        assert live["nodes"]["flaky"]["attempts"][0]["phase"] == "failed"

        mapped = plait.run(flows.partial_map, {"n": 20, "bad": [5]}, options=fast_retries(), engine=engine)
        assert replay(mapped.execution_id, engine.store.events(mapped.execution_id)).snapshot() == \
            mapped.result.state.snapshot()
    finally:
        engine.close()


def test_events_are_idempotent_on_attempt_and_phase():
    engine = build_engine()
    try:
        execution = plait.run(flows.arithmetic, {"a": 1}, engine=engine)
        events = list(engine.store.events(execution.execution_id))
        for event in events:
            engine.store.append(event)
        assert len(list(engine.store.events(execution.execution_id))) == len(events)
    finally:
        engine.close()


def test_stdout_and_stderr_of_each_attempt_are_kept():
    execution = plait.run(flows.noisy_wf, {"x": 5})
    attempt = execution.result.state.nodes["noisy"].attempts[0]
    assert Path(attempt.logs["stdout"]).read_text().strip() == "hello from stdout 5"
    assert Path(attempt.logs["stderr"]).read_text().strip() == "hello from stderr 5"


def test_dynamic_workflows_build_and_run_their_graph_at_run_time():
    execution = plait.run(flows.dynamic_wf, {"n": 4})
    assert execution.outputs == {"o0": 12}
    assert execution.result.state.nodes["dynamic_total.double-4"].phase == "succeeded"


def test_a_dynamic_workflow_is_type_checked_before_any_of_it_runs():
    execution = plait.run(flows.dynamic_bad_wf, {"n": 4})
    assert execution.phase == Phase.FAILED
    assert "expects int, but is bound to to_text.o0 of type str" in execution.error
    assert not any(n.startswith("dynamic_bad.") for n in execution.result.state.nodes)


def test_data_frames_files_and_dataclasses_travel_between_processes():
    assert plait.run(flows.frames, {"n": 10}).outputs == {"o0": 22.5}
    assert plait.run(flows.files, {"text": "bigfoot"}).outputs == {"o0": "BIGFOOT"}
    assert plait.run(flows.points, {"p": flows.Point(1, 2.5)}).outputs == {"o0": flows.Point(2, 2.5)}


def test_container_tasks_run_their_command_with_typed_outputs():
    execution = plait.run(flows.container_wf, {"word": "hello"})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"o0": "42"}


@pytest.mark.parametrize("inline", [False, True], ids=["pool", "inline"])
def test_env_and_secrets_reach_the_task_and_secrets_stay_out_of_the_store(monkeypatch, inline):
    monkeypatch.setenv("PLAIT_SECRET_API_TOKEN", "s3cr3t-value")
    engine = build_engine()
    try:
        execution = plait.run(flows.env_and_secret, {"name": "bob"}, options=RunOptions(inline=inline),
                              engine=engine)
        assert execution.outputs == {"o0": "howdy bob, token has 12 characters"}
        assert "GREETING" not in __import__("os").environ
        events = list(engine.store.events(execution.execution_id))
        assert events and not any("s3cr3t-value" in str(e.data) for e in events)
    finally:
        engine.close()


def test_a_missing_secret_fails_at_once_and_says_where_to_put_it(fast_retries):
    execution = plait.run(flows.env_and_secret, {"name": "bob"}, options=fast_retries())
    assert execution.phase == Phase.FAILED
    assert "needs secret 'api-token'" in execution.error and "PLAIT_SECRET_API_TOKEN" in execution.error
    assert len(execution.result.state.nodes["uses_env_and_secret"].attempts) == 1


def test_a_retried_attempt_restores_a_checkpointed_directory(tmp_path, fast_retries):
    log = tmp_path / "log"
    execution = plait.run(flows.resumable_dir_wf, {"log": str(log)}, options=fast_retries())
    assert execution.outputs == {"o0": ["from attempt 1", "from attempt 2"]}
    assert log.read_text().splitlines() == ["attempt 1 restored=False", "attempt 2 restored=True"]


def test_large_values_offloaded_one_by_one_arrive_whole_inside_a_list():
    execution = plait.run(flows.big_values, {"n": 2})
    assert execution.outputs == {"o0": [(1 << 20) + 1, (1 << 20) + 1]}


def test_cached_map_items_are_recorded_as_cached_successes(tmp_path):
    marker = tmp_path / "calls"
    first = plait.run(flows.cached_map, {"n": 3, "marker": str(marker)})
    second = plait.run(flows.cached_map, {"n": 3, "marker": str(marker)})
    assert first.outputs == second.outputs == {"o0": [0, 1, 4]}
    assert lines(marker) == 3
    assert second.result.state.nodes["map-cached_square"].item_counts == {"succeeded": 3}
    engine = build_engine()
    try:
        events = list(engine.store.events(second.execution_id))
    finally:
        engine.close()
    items = [e for e in events if e.kind == "item" and e.phase == "succeeded"]
    assert len(items) == 3 and all(e.data.get("cached") is True and e.data.get("attempt") == 0 for e in items), (
        "a map item served from the cache is recorded as a cached success, not as an attempt")


def test_overwrite_cache_runs_cached_map_items_again(tmp_path):
    marker = tmp_path / "calls"
    plait.run(flows.cached_map, {"n": 3, "marker": str(marker)})
    again = plait.run(flows.cached_map, {"n": 3, "marker": str(marker)}, options=RunOptions(overwrite_cache=True))
    assert again.outputs == {"o0": [0, 1, 4]}
    assert lines(marker) == 6, "overwrite_cache served map items from the cache"


def test_inline_mode_judges_a_timeout_when_the_task_returns(tmp_path, fast_retries):
    marker = tmp_path / "calls"
    execution = plait.run(flows.sleepy_wf, {"seconds": 2.5, "marker": str(marker)}, options=fast_retries(inline=True))
    assert execution.phase == Phase.FAILED
    assert [a.phase for a in execution.result.state.nodes["sleepy"].attempts] == ["timed_out", "timed_out"]


def test_cancelling_while_a_blocking_submit_runs_aborts_what_it_started(tmp_path):
    from plait.builtin.container_task import ContainerTask

    class SlowToStart(ContainerTask):
        """A container task type whose submit takes a while (a slow API), off the event loop."""

        def submit(self, ctx, task):
            time.sleep(1.0)
            return super().submit(ctx, task)

    marker = tmp_path / "starts"
    engine = build_engine()
    engine.registry.task_types["container"] = SlowToStart()
    try:
        spec = flows.container_then_double.spec
        literals = encode_inputs(flows.container_then_double, {"marker": str(marker), "seconds": 60}, engine)

        async def cancel_during_submit():
            task = asyncio.create_task(engine.run(spec, literals))
            await asyncio.sleep(0.5)  # inside the slow submit
            task.cancel()
            return await task

        result = asyncio.run(cancel_during_submit())
        assert result.phase == Phase.ABORTED
        time.sleep(0.3)
        pid_file = engine.settings.home / "runs" / result.execution_id / "slow_echo" / "1" / "process" / "pid"
        pid = int(pid_file.read_text())  # the slow submit did start the command
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2], \
            "the command the cancelled submit started is still running"
        assert str(marker) not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        assert result.state.nodes["slow_echo"].phase == "aborted"
    finally:
        engine.registry.task_types["container"] = ContainerTask()
        engine.close()


class FlakyPoll:
    """A container task type whose poll raises its first ``failures`` times, counting aborts."""

    def __new__(cls, failures: int):
        from plait.builtin.container_task import ContainerTask

        class Flaky(ContainerTask):
            def __init__(self) -> None:
                super().__init__()
                self.failures, self.polls, self.aborts = failures, 0, 0

            def poll(self, ctx, handle):
                self.polls += 1
                if self.polls <= self.failures:
                    raise ConnectionError("the service dropped the connection")
                return super().poll(ctx, handle)

            def abort(self, ctx, handle):
                self.aborts += 1
                return super().abort(ctx, handle)

        return Flaky()


def _with_task_type(task_type, run):
    from plait.builtin.container_task import ContainerTask

    engine = build_engine()
    engine.registry.task_types["container"] = task_type
    try:
        return run(engine)
    finally:
        engine.registry.task_types["container"] = ContainerTask()
        engine.close()


def test_a_poll_that_fails_now_and_then_does_not_end_the_attempt(tmp_path):
    flaky = FlakyPoll(failures=2)
    execution = _with_task_type(flaky, lambda engine: plait.run(
        flows.container_then_double, {"marker": str(tmp_path / "m"), "seconds": 0}, engine=engine))
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"o0": 14}
    assert len(execution.result.state.nodes["slow_echo"].attempts) == 1 and flaky.aborts == 0


def test_a_poll_that_keeps_failing_aborts_the_work_before_the_attempt_ends(tmp_path, fast_retries):
    flaky = FlakyPoll(failures=1000)
    marker = tmp_path / "m"
    execution = _with_task_type(flaky, lambda engine: plait.run(
        flows.container_then_double, {"marker": str(marker), "seconds": 60}, engine=engine,
        options=fast_retries()))
    assert execution.phase == Phase.FAILED
    assert "failed in poll 3 times in a row: ConnectionError" in str(execution.error)
    attempts = execution.result.state.nodes["slow_echo"].attempts
    assert flaky.aborts >= len(attempts) >= 1, "the work went on while the attempt was given up"
    assert str(marker) not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


def test_a_task_defined_inside_a_function_fails_saying_to_define_it_at_module_level():
    @plait.task
    def hidden(n: int) -> int:
        return n

    @plait.workflow
    def wf(n: int) -> int:
        return hidden(n=n)

    execution = plait.run(wf, {"n": 1})
    assert execution.phase == Phase.FAILED
    assert "defined inside a function" in str(execution.error) and "module level" in str(execution.error)


# -- README claims about the authoring API and where state lives ----------------------------


def test_a_retryable_error_spends_the_user_retry_budget(tmp_path, fast_retries):
    marker = tmp_path / "calls"
    execution = plait.run(readme_flows.retryable_wf, {"marker": str(marker)}, options=fast_retries())
    assert execution.phase == Phase.FAILED
    attempts = execution.result.state.nodes["asks_for_a_retry"].attempts
    assert [(a.phase, a.error_kind) for a in attempts] == [("failed", "user"), ("failed", "user")]  # retries=1
    assert lines(marker) == 2 and "RetryableError: the service is busy" in execution.error


def test_the_system_retry_budget_defaults_to_three(tmp_path, fast_retries):
    marker = tmp_path / "calls"
    execution = plait.run(readme_flows.always_dies_wf, {"marker": str(marker)}, options=fast_retries())
    assert execution.phase == Phase.FAILED
    attempts = execution.result.state.nodes["always_dies"].attempts
    assert [a.error_kind for a in attempts] == ["system"] * 4  # the first attempt and three system retries
    assert lines(marker) == 4


def test_backoff_between_retries_grows_exponentially(tmp_path):
    marker = tmp_path / "calls"
    engine = build_engine()
    try:
        execution = plait.run(readme_flows.backoff_wf, {"marker": str(marker)},
                              options=RunOptions(backoff_base=0.4, backoff_max=60), engine=engine)
        assert execution.phase == Phase.SUCCEEDED
        events = [e for e in engine.store.events(execution.execution_id) if e.kind == "attempt"]
    finally:
        engine.close()
    failed = {e.data["attempt"]: e.ts for e in events if e.phase == "failed"}
    started = {e.data["attempt"]: e.ts for e in events if e.phase == "running"}
    # before attempt n+1 the engine waits base * 2**(n-1), times a jitter in [0.5, 1]
    assert started[4] - failed[3] >= 0.4 * 4 * 0.5
    assert started[3] - failed[2] >= 0.4 * 2 * 0.5


def test_a_map_with_concurrency_1_runs_one_item_at_a_time(tmp_path):
    log = tmp_path / "log"
    execution = plait.run(readme_flows.serial_map, {"n": 4, "log": str(log), "seconds": 0.3})
    assert execution.outputs == {"o0": [0, 1, 2, 3]}
    events = log.read_text().split("\n")[:-1]
    assert events == [f"{what} {i}" for i in range(4) for what in ("start", "end")]  # never two open


def test_map_over_a_named_input(tmp_path):
    execution = plait.run(readme_flows.named_over, {"x": 10, "factors": [1, 2, 3]})
    assert execution.outputs == {"o0": [10, 20, 30]}


def test_the_context_names_the_execution_node_attempt_and_item_and_gives_a_private_scratch():
    execution = plait.run(readme_flows.context_map, {"n": 3})
    xid = execution.execution_id
    rows = execution.outputs["o0"]
    for i, (ex, node, attempt_id, attempt, item_index, _, files) in enumerate(rows):
        assert (ex, node, attempt, item_index) == (xid, "map-whoami", "1", str(i))
        assert attempt_id == f"{xid}/map-whoami[{i}]/1"
        assert files == "['mine']"  # its own folder: no other item's file in it
    assert len({row[5] for row in rows}) == 3


def test_each_map_item_has_its_own_checkpoint(fast_retries):
    execution = plait.run(readme_flows.checkpointed_map, {"n": 3}, options=fast_retries())
    assert execution.outputs == {"o0": [f"saved by item {i}" for i in range(3)]}


def test_calling_a_workflow_as_a_function_runs_it_in_this_process(tmp_path):
    assert cli_flows.pid_wf(marker=str(tmp_path / "pid")) == os.getpid()


def test_a_workflow_body_is_traced_once(tmp_path):
    calls = []

    @plait.workflow(name="traced_once")
    def wf(a: int) -> int:
        calls.append(a)
        return flows.double(x=a)

    _ = wf.spec
    _ = wf.spec
    assert plait.run(wf, {"a": 4}).outputs == {"o0": 8}
    assert len(calls) == 1


def test_plait_home_holds_the_event_store_blobs_and_attempt_folders(plait_home):
    execution = plait.run(flows.noisy_wf, {"x": 5})
    assert (plait_home / "plait.db").is_file()
    assert plait.run(flows.files, {"text": "a file"}).outputs == {"o0": "A FILE"}
    assert any((plait_home / "blobs").rglob("out.txt"))  # the File went through the blob store there
    attempt = execution.result.state.nodes["noisy"].attempts[0]
    assert Path(attempt.logs["stdout"]).parent == plait_home / "runs" / execution.execution_id / "noisy" / "1"


def test_without_plait_home_state_lives_in_dot_plait(tmp_path, monkeypatch):
    monkeypatch.delenv("PLAIT_HOME")
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env()
    assert settings.home == tmp_path / ".plait"
    assert settings.db_url == f"sqlite:///{tmp_path / '.plait' / 'plait.db'}"
    assert settings.blob_url == str(tmp_path / ".plait" / "blobs")


def test_PLAIT_DB_URL_puts_the_event_store_elsewhere(tmp_path, monkeypatch, plait_home):
    db = tmp_path / "elsewhere.db"
    monkeypatch.setenv("PLAIT_DB_URL", f"sqlite:///{db}")
    execution = plait.run(flows.arithmetic, {"a": 1})
    assert not (plait_home / "plait.db").exists()
    store = EventStore(f"sqlite:///{db}")
    try:
        assert store.execution(execution.execution_id)["phase"] == "succeeded"
    finally:
        store.close()


def test_events_are_written_in_batches_of_2000(tmp_path):
    url = f"sqlite:///{tmp_path / 'batches.db'}"
    writer, reader = EventStore(url), EventStore(url)
    try:
        for i in range(1999):
            writer.append(Event("x1", "item", f"map[{i}]/1", "succeeded", {"index": i}, ts=1.0 + i))
        assert list(reader.events("x1")) == []  # still buffered
        writer.append(Event("x1", "item", "map[1999]/1", "succeeded", {"index": 1999}, ts=3000.0))
        assert len(list(reader.events("x1"))) == 2000
    finally:
        writer.close()
        reader.close()


def test_a_running_execution_writes_its_events_within_a_fraction_of_a_second(tmp_path):
    marker = tmp_path / "calls"
    engine = build_engine()
    reader = EventStore(engine.settings.db_url)
    spec = flows.two_slow.spec
    literals = encode_inputs(flows.two_slow, {"seconds": 20.0, "marker": str(marker)}, engine)

    async def watch() -> float:
        task = asyncio.create_task(engine.run(spec, literals))
        try:
            while lines(marker) < 2:  # both attempts are running, so their events exist in memory
                await asyncio.sleep(0.02)
            started = time.monotonic()
            while True:
                rows = reader.list_executions(1)
                stored = list(reader.events(rows[0]["id"])) if rows else []
                if sum(e.kind == "attempt" and e.phase == "running" for e in stored) == 2:
                    return time.monotonic() - started
                await asyncio.sleep(0.02)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    try:
        assert asyncio.run(asyncio.wait_for(watch(), 15)) < 10  # written while the attempts still run
    finally:
        reader.close()
        engine.close()


def test_the_same_file_content_hits_the_cache_whatever_folder_it_comes_from(tmp_path):
    marker = tmp_path / "calls"
    first, second = tmp_path / "a" / "rows.txt", tmp_path / "b" / "rows.txt"
    for path in (first, second):
        path.parent.mkdir()
        path.write_text("1\n2\n3\n")
    assert plait.run(readme_flows.cached_lines, {"f": plait.File(first), "marker": str(marker)}).outputs == {"o0": 3}
    again = plait.run(readme_flows.cached_lines, {"f": plait.File(second), "marker": str(marker)})
    assert again.outputs == {"o0": 3} and again.result.state.nodes["count_lines"].cached
    second.write_text("1\n2\n")
    assert plait.run(readme_flows.cached_lines, {"f": plait.File(second), "marker": str(marker)}).outputs == {"o0": 2}
    assert lines(marker) == 2


def test_a_failed_cleanup_is_recorded_beside_the_attempt_without_changing_its_ending(tmp_path):
    from plait.builtin.container_task import ContainerTask

    class CleanupFails(ContainerTask):
        def cleanup(self, ctx, handle):
            super().cleanup(ctx, handle)
            raise RuntimeError("the bucket is gone")

    execution = _with_task_type(CleanupFails(), lambda engine: plait.run(
        flows.container_then_double, {"marker": str(tmp_path / "m"), "seconds": 0}, engine=engine))
    assert execution.phase == Phase.SUCCEEDED, execution.error
    (attempt,) = execution.result.state.nodes["slow_echo"].attempts
    assert attempt.phase == Phase.SUCCEEDED and attempt.cleanup_error == "the bucket is gone"
    events = list(build_engine().store.events(execution.execution_id))
    assert {e.phase for e in events} <= set(Phase)  # every event's phase is a Phase
    assert [e.kind for e in events if e.entity.endswith("#cleanup")] == ["cleanup"]


def test_a_dynamic_nodes_compiled_graph_is_an_event_of_its_own():
    execution = plait.run(flows.dynamic_wf, {"n": 3})
    assert execution.phase == Phase.SUCCEEDED
    node = execution.result.state.nodes["dynamic_total"]
    assert node.phase == Phase.SUCCEEDED and node.graph is not None and node.graph["nodes"] >= 1
    events = list(build_engine().store.events(execution.execution_id))
    assert {e.phase for e in events} <= set(Phase)


@pytest.mark.parametrize("inline", [False, True], ids=["pool", "inline"])
def test_a_file_given_to_a_task_is_downloaded_into_that_attempts_scratch_folder(plait_home, inline):
    execution = plait.run(flows.file_landing, {"text": "hi"}, options=RunOptions(inline=inline))
    assert execution.phase == Phase.SUCCEEDED, execution.error
    path, scratch = execution.outputs["o0"].split("|")
    assert Path(path).is_relative_to(scratch), (path, scratch)
    assert Path(scratch).is_relative_to(plait_home / "runs")
