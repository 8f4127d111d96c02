"""An ended attempt's log links that are addresses: ``file://`` logs are read, other addresses
(a job's page, a model in a bucket) are listed as links, and a kept file that is gone says so."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import plait
import pytest
from kept_logs import cli_logs, kept_logs
from plait.builtin.python_task import PythonTask
from plait.model.status import Phase
from plait.plugins.registry import load_registry
from plait.service.logs import LogsUnavailableError

JOB = "https://console.example.invalid/jobs/linked-1"
MODEL = "s3://models.example.invalid/linked-1/model.tar.gz"


class Linked(PythonTask):
    """A Python task whose ended attempt also links a trace file by address, a page and a model,
    as a service task type's would (SageMaker's job page, its model in S3)."""

    name = "linked"

    def poll(self, ctx, handle):
        status = super().poll(ctx, handle)
        if not status.phase.terminal:
            return status
        trace = Path(ctx.inputs["trace"]).as_uri()
        return dataclasses.replace(status, log_links={**status.log_links, "trace": trace, "job": JOB,
                                                      "model": MODEL})


@pytest.fixture(autouse=True)
def _linked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(load_registry().task_types, "linked", Linked())  # as an installed plugin would


@plait.task(task_type="linked")
def traced(trace: str) -> int:
    print("traced to stdout")
    Path(trace).write_text("a line of the trace\n")
    return 1


@plait.workflow
def traced_wf(trace: str) -> int:
    return traced(trace=trace)


def run(tmp_path: Path) -> str:
    execution = plait.run(traced_wf, {"trace": str(tmp_path / "trace.log")})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    return execution.execution_id


def test_a_file_address_is_read_and_other_addresses_are_links(tmp_path: Path):
    xid = run(tmp_path)
    parts, notes = kept_logs(xid, "traced")
    assert list(parts) == ["stdout", "trace", "job", "model"], "text first, then the links"
    assert parts["trace"].kind == "text" and parts["trace"].text == "a line of the trace\n"
    assert parts["trace"].source == (tmp_path / "trace.log").as_uri()
    assert (parts["job"].kind, parts["job"].source, parts["job"].text) == ("link", JOB, f"job: {JOB}\n")
    assert (parts["model"].kind, parts["model"].text) == ("link", f"model: {MODEL}\n")
    shown = cli_logs(xid, "traced")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == f"traced to stdout\n==> trace <==\na line of the trace\njob: {JOB}\nmodel: {MODEL}\n"


def test_a_kept_file_that_is_gone_is_noted_and_the_rest_still_shown(tmp_path: Path):
    xid = run(tmp_path)
    (tmp_path / "trace.log").unlink()
    parts, notes = kept_logs(xid, "traced")
    assert list(parts) == ["stdout", "job", "model"]
    assert len(notes) == 1 and f"its trace was kept at {(tmp_path / 'trace.log').as_uri()}, which is gone" in notes[0]
    shown = cli_logs(xid, "traced")
    assert shown.returncode == 0 and "which is gone" in shown.stderr


@plait.task
def printer(x: int) -> int:
    print(f"printed {x}")
    return x


@plait.workflow
def printer_wf(x: int) -> int:
    return printer(x=x)


def test_an_attempt_whose_every_kept_file_is_gone_is_an_error_that_says_so(plait_home: Path):
    execution = plait.run(printer_wf, {"x": 4})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    parts, _ = kept_logs(execution.execution_id, "printer")
    assert parts["stdout"].text == "printed 4\n"
    Path(parts["stdout"].source).unlink()
    with pytest.raises(LogsUnavailableError, match=r"its stdout was kept at .*stdout\.log, which is gone"):
        kept_logs(execution.execution_id, "printer")
