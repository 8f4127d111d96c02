"""plait-spark with real PySpark in local mode (Java 17)."""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path

import plait
import sparkflows  # noqa: E402
from plait.model.status import Phase
from plait.testing.lifecycle import (
    LifecycleCase,
    TaskTypeLifecycleTests,
    files_holding,
    make_context,
    marked_processes,
    poll_until_done,
    processes_outliving,
)
from plait.types.engine import engine as type_engine
from plait_spark.hooks import SparkTask


class TestSparkLifecycle(TaskTypeLifecycleTests):
    def case(self, tmp_path: Path) -> LifecycleCase:
        type_engine()
        marker = tmp_path / "starts"
        return LifecycleCase(
            new_task_type=SparkTask,
            quick=sparkflows.count.template, quick_inputs={"rows": 10}, expected_outputs={"o0": 10},
            slow=sparkflows.slow.template, slow_inputs={"seconds": 300, "marker": str(marker)},  # aborted by every test: outlasts the attach tests' watch (twice its start)
            starts=lambda: len(marker.read_text().splitlines()) if marker.exists() else 0,
            start_timeout=20,  # a JVM and a SparkSession: 10-14 s measured with the load at 3 on 2 cores
            timeout=120,
        )


def test_a_spark_frame_feeds_a_pandas_task_and_back():
    execution = plait.run(sparkflows.round_trip, {"rows": 100})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"o0": 2 * sum(i * i for i in range(100))}


def test_the_task_reads_its_secret_which_neither_a_file_nor_the_jvm_holds(plait_home, monkeypatch):
    token = f"spark-token-{uuid.uuid4().hex}"
    monkeypatch.setenv("PLAIT_SECRET_SPARK_TOKEN", token)
    execution = plait.run(sparkflows.reads_token, {"digest": hashlib.sha256(token.encode()).hexdigest()})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"o0": "seen=True jvm=False"}
    assert list(plait_home.rglob("job.json")), "the attempt's job.json was not under the plait home"
    assert files_holding([token], [plait_home]) == [], "the secret's value was written to a file"


def test_an_analysis_error_shows_sparks_message_not_a_py4j_wall():
    execution = plait.run(sparkflows.analysis_error, {"rows": 3})
    assert execution.phase == Phase.FAILED
    assert "AnalysisException" in execution.error and "nope" in execution.error
    assert "\tat org." not in execution.error


def test_a_jvm_error_shows_the_java_cause_without_its_stack():
    execution = plait.run(sparkflows.jvm_error, {"rows": 3})
    assert execution.phase == Phase.FAILED
    assert "DIVIDE_BY_ZERO" in execution.error
    assert "\tat org." not in execution.error and "at org.apache" not in execution.error


def test_abort_leaves_no_jvm_behind(tmp_path):
    type_engine()
    marker = tmp_path / "starts"
    task_type = SparkTask()
    ctx = make_context(tmp_path, "abort/slow/1", {"seconds": 60, "marker": str(marker)})
    handle = task_type.submit(ctx, sparkflows.slow.template)
    deadline = time.monotonic() + 90
    while not marker.exists():
        assert time.monotonic() < deadline, "the Spark task did not start"
        time.sleep(0.2)
    assert marked_processes(handle["workdir"], "java"), "no JVM found for the running Spark task"
    task_type.abort(ctx, handle)
    assert poll_until_done(task_type, ctx, handle, 30).phase in (Phase.FAILED, Phase.ABORTED)
    time.sleep(0.5)
    assert processes_outliving(handle["workdir"], "java") == [], "the JVM outlived the abort"
    task_type.cleanup(ctx, handle)


def test_the_session_runs_on_local_n_capped_at_the_machines_cores_with_the_ui_off():
    import os

    cores = len(os.sched_getaffinity(0))
    execution = plait.run(sparkflows.greedy)  # asks 64 executors * 4 cores
    assert execution.phase == Phase.SUCCEEDED, execution.error
    seen = execution.outputs["o0"]
    assert seen["master"] == f"local[{cores}]" and seen["parallelism"] == str(cores)
    assert seen["ui.enabled"] == "false" and seen["ui.url"] == "None", "the Spark UI is on"
    assert seen["SPARK_LOCAL_IP"] == "127.0.0.1"


def test_local_n_is_executor_instances_times_executor_cores_below_the_cap():
    import os

    from plait_spark import Spark

    cores = len(os.sched_getaffinity(0))
    for instances, per_executor in [(1, 1), (2, 1), (1, 2), (2, 2), (3, 2)]:
        expected = min(instances * per_executor, cores)
        assert Spark(executor_instances=instances, executor_cores=per_executor).local_threads() == expected
