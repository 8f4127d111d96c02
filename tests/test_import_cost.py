"""What ``import plait`` loads: the user API, not the engine or the store (they load when
something runs), so a task's worker and a program that only defines workflows start fast; and
what ``plait run`` of one task loads: only what that run needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("sqlalchemy", "alembic", "plait.engine", "plait.storage.events", "plait.service")


def test_import_plait_leaves_the_engine_and_the_store_unloaded() -> None:
    probe = f"import json, sys, plait; print(json.dumps(sorted(m for m in sys.modules if m.startswith({HEAVY!r}))))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                       check=True).stdout)
    assert loaded == []


def test_plait_run_loads_the_engine_when_first_used() -> None:
    probe = "import sys, plait; plait.run; print('plait.engine' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True).stdout.strip() == "True"


ONE_TASK = Path(__file__).parent / "one_task.py"
UNNEEDED = ("fsspec", "alembic", "rich.pretty")
"""What ``plait run --inline`` of a one-task workflow with an inline output never needs: the
blob store's filesystem (no value goes there), Alembic (the schema is created or already at
head), rich's pretty-printer (the output is a plain int)."""


def _modules_after_run(workflow: Path, home: Path) -> list[str]:
    probe = ("import atexit, json, runpy, sys; "
             f"atexit.register(lambda: print('MODULES', json.dumps(sorted(m for m in sys.modules if m.startswith({UNNEEDED!r}))))); "
             f"sys.argv = ['plait', 'run', '--inline', {str(workflow) + ':wf'!r}]; "
             "runpy.run_module('plait.cli', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env={**os.environ, "PLAIT_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("MODULES "))
    return json.loads(line.removeprefix("MODULES "))


def test_plait_run_of_one_task_loads_only_what_the_run_needs(tmp_path: Path) -> None:
    assert _modules_after_run(ONE_TASK, tmp_path) == []  # a fresh store: created at head
    assert any(tmp_path.iterdir())
    assert _modules_after_run(ONE_TASK, tmp_path) == []  # the schema is current
