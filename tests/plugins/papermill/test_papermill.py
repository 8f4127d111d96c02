"""plait-papermill with real papermill and ipykernel."""

from __future__ import annotations

import os
import time
from pathlib import Path

import notebooks  # noqa: E402  (tests/plugins/papermill is on sys.path through conftest)
import plait
import pytest
from plait.model.status import Phase
from plait.platforms.local.process import PROCESS_MARKER
from plait.testing.lifecycle import (
    LifecycleCase,
    TaskTypeLifecycleTests,
    make_context,
    marked_processes,
    poll_until_done,
    processes_outliving,
)
from plait.types.engine import engine as type_engine
from plait_papermill.hooks import PapermillTask


class TestPapermillLifecycle(TaskTypeLifecycleTests):
    def case(self, tmp_path: Path) -> LifecycleCase:
        type_engine()
        marker = tmp_path / "starts"
        return LifecycleCase(
            new_task_type=PapermillTask,
            quick=notebooks.quick.template, quick_inputs={"a": 2, "b": 3}, expected_outputs={"total": 5},
            slow=notebooks.slow.template, slow_inputs={"marker": str(marker), "seconds": 300},  # aborted by every test: outlasts the attach tests' watch (twice its start)
            starts=lambda: len(marker.read_text().splitlines()) if marker.exists() else 0,
            start_timeout=10,  # papermill and an ipykernel: 3.5-5.5 s measured with the load at 3
            timeout=120,
        )


def test_inputs_are_parameters_and_recorded_values_are_typed_outputs():
    execution = plait.run(notebooks.analyse, {"n": 5, "title": "xs"})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"mean": 2.0, "rows": 5, "doubled_total": 20.0, "summary": "xs: 2.0"}


def test_the_executed_notebook_and_its_html_report_are_kept():
    execution = plait.run(notebooks.analyse, {"n": 3, "title": "t"})
    attempt = execution.result.state.nodes["stats"].attempts[-1]
    blobs = plait.engine.build_engine().blobs
    report = blobs.read_bytes(attempt.logs["report"]).decode()
    assert "<html" in report and "mean is 1.0" in report
    executed = blobs.read_bytes(attempt.logs["notebook"]).decode()
    assert '"title = \\"t\\"' in executed or "title = \\\"t\\\"" in executed or "title = 't'" in executed


def test_a_failing_cell_names_its_number_source_and_exception(fast_retries):
    execution = plait.run(notebooks.divide, {"divisor": 0}, options=fast_retries())
    assert execution.phase == Phase.FAILED
    assert "cell 3 raised ZeroDivisionError: division by zero" in execution.error
    assert "ratio = value / divisor" in execution.error
    assert plait.run(notebooks.divide, {"divisor": 4}).outputs == {"o0": 0.25}


def test_a_missing_notebook_is_a_compile_error(tmp_path):
    from plait_papermill import notebook_task

    ghost = notebook_task("ghost", tmp_path / "nowhere.ipynb", outputs={"x": int})

    @plait.workflow
    def wf() -> int:
        return ghost()

    with pytest.raises(plait.CompileError, match="no notebook at .*nowhere.ipynb"):
        _ = wf.spec


def test_abort_stops_the_kernel_too(tmp_path):
    type_engine()
    marker = tmp_path / "starts"
    task_type = PapermillTask()
    ctx = make_context(tmp_path, "abort/slow/1", {"marker": str(marker), "seconds": 60})
    handle = task_type.submit(ctx, notebooks.slow.template)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline, "the notebook did not start"
        time.sleep(0.1)
    kernel = int(marker.read_text().split()[0])
    assert kernel in marked_processes(handle["workdir"])
    task_type.abort(ctx, handle)
    assert poll_until_done(task_type, ctx, handle, 30).phase in (Phase.FAILED, Phase.ABORTED)
    time.sleep(0.3)
    assert processes_outliving(handle["workdir"]) == [], "a process of the aborted notebook is still running"
    task_type.cleanup(ctx, handle)


def test_a_notebook_that_fails_is_retried_from_the_user_budget_and_can_succeed(tmp_path, fast_retries):
    log = tmp_path / "runs"
    execution = plait.run(notebooks.flaky_once, {"log": str(log)}, options=fast_retries())
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"o0": 2}, "the retry did not run the notebook again"
    assert log.read_text().splitlines() == ["run", "run"]
    first, second = execution.result.state.nodes["flaky"].attempts
    assert first.phase == "failed" and first.error_kind == "user", "a failing cell is the user's error"
    assert "RuntimeError: the first run fails" in first.message
    assert second.phase == "succeeded"
    assert os.environ.get(PROCESS_MARKER) is None


# -- options ---------------------------------------------------------------------------------


def test_the_notebook_runs_on_the_kernel_named_by_kernel(tmp_path, monkeypatch):
    import json
    import sys

    from plait_papermill import notebook_task

    spec = tmp_path / "jupyter" / "kernels" / "plait-probe"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "plait probe", "language": "python", "env": {"PLAIT_PROBE_KERNEL": "plait-probe"}}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    type_engine()
    task = notebook_task("which", notebooks.WHICH_KERNEL, outputs={"kernel": str}, kernel="plait-probe")
    task_type = PapermillTask()
    ctx = make_context(tmp_path, "kernel/probe/1", {})
    handle = task_type.submit(ctx, task.template)
    status = poll_until_done(task_type, ctx, handle, 60)
    task_type.cleanup(ctx, handle)
    assert status.phase == Phase.SUCCEEDED, status.message
    assert status.outputs == {"kernel": "plait-probe"}, "the notebook did not run on the named kernel"


def test_a_kernel_that_does_not_exist_fails_at_once_naming_it(tmp_path):
    from plait_papermill import notebook_task

    type_engine()
    task = notebook_task("which", notebooks.WHICH_KERNEL, outputs={"kernel": str}, kernel="no-such-kernel-7f3")
    task_type = PapermillTask()
    ctx = make_context(tmp_path, "kernel/missing/1", {})
    handle = task_type.submit(ctx, task.template)
    status = poll_until_done(task_type, ctx, handle, 60)
    task_type.cleanup(ctx, handle)
    assert status.phase == Phase.FAILED and not status.retryable
    assert "no-such-kernel-7f3" in status.message, status.message


def test_a_cell_running_past_cell_timeout_fails_the_attempt_saying_so(tmp_path):
    from plait_papermill import notebook_task

    type_engine()
    task = notebook_task("slow", notebooks.SLOW, inputs={"marker": str, "seconds": int}, outputs={"n": int},
                         cell_timeout=1)
    task_type = PapermillTask()
    ctx = make_context(tmp_path, "timeout/1", {"marker": str(tmp_path / "starts"), "seconds": 600})
    handle = task_type.submit(ctx, task.template)
    try:
        status = poll_until_done(task_type, ctx, handle, 60)  # the cell sleeps 600 s: only the timeout ends it
    finally:
        task_type.abort(ctx, handle)
        task_type.cleanup(ctx, handle)
    assert status.phase == Phase.FAILED
    assert "timed out" in status.message and "1 seconds" in status.message, status.message
