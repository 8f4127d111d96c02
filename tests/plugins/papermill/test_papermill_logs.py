"""A notebook attempt's log: what its cells printed, and its executed notebook as a link."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import notebooks  # noqa: E402  (tests/plugins/papermill is on sys.path through conftest)
import plait
from kept_logs import cli_logs, kept_logs
from plait.model.status import Phase


def test_the_cells_output_is_the_log_and_the_kept_notebook_a_link_not_a_gone_file():
    execution = plait.run(notebooks.analyse, {"n": 3, "title": "t"})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    parts, notes = kept_logs(execution.execution_id, "stats")
    assert parts["stdout"].kind == "text" and parts["stdout"].text == "mean is 1.0\n"
    notebook = parts["notebook"]
    assert notebook.kind == "link" and notebook.source.startswith("file://")
    assert notebook.source.endswith("executed.ipynb") and Path(urlsplit(notebook.source).path).is_file()
    assert notebook.text == f"notebook: {notebook.source}\n"
    assert parts["report"].kind == "link" and notes == []
    assert list(parts)[-2:] == ["notebook", "report"], "the links come after the text"
    shown = cli_logs(execution.execution_id, "stats")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("mean is 1.0\n") and f"notebook: {notebook.source}\n" in shown.stdout
    assert "gone" not in shown.stdout + shown.stderr
