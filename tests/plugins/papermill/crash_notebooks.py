"""A notebook that runs until a test lets it finish, behind a gate: for the crash tests.

A module of its own (worker processes import it by name); the notebook is written to
``generated/`` like the others, atomically, since other test processes may be reading it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import plait
from plait_papermill import notebook_task

GENERATED = Path(__file__).parent / "generated"


def _write_waiting_notebook() -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    parameters = nbformat.v4.new_code_cell("marker = ''\nrelease = ''\nx = 0")
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [
        parameters,
        nbformat.v4.new_code_cell(
            "import os, time\nfrom pathlib import Path\n"
            "with open(marker, 'a') as fh:\n    fh.write(f'{os.getpid()}\\n')\n"
            "deadline = time.monotonic() + 120\n"
            "while not Path(release).exists():\n"
            "    assert time.monotonic() < deadline, 'the test never released the notebook'\n"
            "    time.sleep(0.05)"),
        nbformat.v4.new_code_cell("from plait_papermill import record\nrecord('n', 2 * x)"),
    ]
    GENERATED.mkdir(exist_ok=True)
    path = GENERATED / "waits_for_release.ipynb"
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    nbformat.write(nb, str(tmp))
    os.replace(tmp, path)
    return path


waits = notebook_task("waits", _write_waiting_notebook(), inputs={"marker": str, "release": str, "x": int},
                      outputs={"n": int})
"""Appends its kernel's pid to ``marker`` when it starts, records ``n = 2 * x`` once ``release`` exists."""


@plait.task
def gate(go: str, x: int) -> int:
    """Pass ``x`` on once the file ``go`` exists: a test acts before the notebook is submitted."""
    deadline = time.monotonic() + 120
    while not Path(go).exists():
        assert time.monotonic() < deadline, "the test never opened the gate"
        time.sleep(0.05)
    return x


@plait.workflow
def gated_notebook(go: str, marker: str, release: str, x: int) -> int:
    return waits(marker=marker, release=release, x=gate(go=go, x=x))
