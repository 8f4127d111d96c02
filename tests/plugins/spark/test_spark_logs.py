"""A Spark attempt's log is its driver's stdout and stderr, once it has succeeded too."""

from __future__ import annotations

import sys

import plait
from kept_logs import cli_logs, kept_logs
from plait.model.status import Phase
from plait_spark import Spark


@plait.task(plugin=Spark())
def says(rows: int) -> int:
    from plait import current_context

    count = current_context().spark.range(rows).count()
    print(f"the driver counted {count} rows")
    print(f"the driver warns about {count} rows", file=sys.stderr)
    return int(count)


@plait.workflow
def says_wf(rows: int) -> int:
    return says(rows=rows)


def test_the_drivers_stdout_and_stderr_are_the_log():
    execution = plait.run(says_wf, {"rows": 3})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    parts, _ = kept_logs(execution.execution_id, "says")
    assert list(parts)[:2] == ["stdout", "stderr"], parts
    assert parts["stdout"].text == "the driver counted 3 rows\n"
    assert "the driver warns about 3 rows\n" in parts["stderr"].text
    shown = cli_logs(execution.execution_id, "says")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == "the driver counted 3 rows\n"
