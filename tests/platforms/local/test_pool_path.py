"""Workers started before the engine's sys.path grew (``plait run`` starts them while it
imports the workflow's file) run tasks with the engine's sys.path as it is when they run."""

from __future__ import annotations

import dataclasses
import importlib
import sys

import plait
from plait.engine import build_engine
from plait.engine.execution import RunOptions
from plait.model.settings import Settings
from plait.model.status import Phase
from plait.platforms.local.platform import LocalPlatform
from plait.plugins.registry import load_registry

TASKS = '''
import plait
from .util import add_one  # a relative import: only works when the package is imported by name


@plait.task
def bump(x: int) -> int:
    return add_one(x)


@plait.workflow
def wf(x: int = 1) -> int:
    return bump(x=x)
'''


class Early(LocalPlatform):
    name = "early"


def test_a_task_in_a_package_put_on_sys_path_after_the_workers_started_runs(plait_home, tmp_path, monkeypatch):
    platform = Early()
    registry = dataclasses.replace(load_registry(), platforms={**load_registry().platforms, "early": platform})
    engine = build_engine(Settings.from_env(str(plait_home)), registry=registry)
    try:
        platform.pool.start()  # as warm_up does, before the workflow's folder is on sys.path
        package = tmp_path / "warmpkg"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "util.py").write_text("def add_one(x):\n    return x + 1\n")
        (package / "tasks.py").write_text(TASKS)
        monkeypatch.syspath_prepend(str(tmp_path))  # what importing the workflow's file does
        tasks = importlib.import_module("warmpkg.tasks")
        done = plait.run(tasks.wf, {"x": 41}, options=RunOptions(platform="early"), engine=engine)
        assert done.phase == Phase.SUCCEEDED, done.error
        assert done.outputs == {"o0": 42}
    finally:
        engine.close()
        platform.close()
        for name in [m for m in sys.modules if m.startswith("warmpkg")]:
            del sys.modules[name]

