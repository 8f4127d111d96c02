"""What ``import plait`` loads: the user API, not the engine or the store (they load when
something runs), so a task's worker and a program that only defines workflows start fast."""

from __future__ import annotations

import json
import subprocess
import sys

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
