"""The platform seam: compute task types hand their work to the execution's platform.

A second platform, registered beside ``local``, records what it is given and runs it
locally; the tests check that the python and container task types reach it (they own no
process supervision any more), that every handle names it, that a resume keeps it, and that
an unknown platform is an error before anything runs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import flows
import pytest
from plait.engine import Engine, build_services
from plait.engine.execution import RunOptions
from plait.model.errors import UnknownPlatformError
from plait.model.status import Phase
from plait.model.wire import CommandWork
from plait.platforms.local.platform import LocalPlatform
from plait.plugins.registry import build_registry


class RecordingPlatform(LocalPlatform):
    """Runs like local, and remembers each command and Python attempt it was handed."""

    name = "recording"

    def __init__(self) -> None:
        super().__init__()
        self.commands: list[CommandWork] = []
        self.python_jobs: list[str] = []

    def start(self, work: CommandWork) -> dict[str, Any]:
        self.commands.append(work)
        return super().start(work)

    def submit_python(self, job_id: str, payload: dict[str, Any], done: Any) -> None:
        self.python_jobs.append(job_id)
        super().submit_python(job_id, payload, done)


@pytest.fixture
def recording(plait_home: Path):
    registry = build_registry()
    platform = RecordingPlatform()
    registry.platforms[platform.name] = platform
    engine = Engine(build_services(registry=registry))
    yield engine, platform
    engine.close()


def handles(engine: Engine, execution_id: str) -> list[dict[str, Any]]:
    return [e.data["handle"] for e in engine.store.events(execution_id)
            if e.kind in ("attempt", "item") and e.data.get("handle") is not None]


def test_python_and_container_tasks_run_on_the_platform_the_execution_names(recording):
    engine, platform = recording
    spec = flows.container_wf.spec
    result = asyncio.run(engine.run(spec, {"word": "hi"}, RunOptions(platform="recording")))
    assert result.phase == Phase.SUCCEEDED and result.outputs == {"o0": "42"}
    assert [w.argv[0] for w in platform.commands] == ["sh"]  # the container's command line
    assert "printf '%s' 'hi'" in platform.commands[0].argv[-1]  # rendered before it reached the platform
    assert len(platform.python_jobs) == 1  # to_text, in the recording platform's worker pool
    assert {h["platform"] for h in handles(engine, result.execution_id)} == {"recording"}


def test_the_default_platform_is_local_and_every_handle_says_so(recording):
    engine, platform = recording
    result = asyncio.run(engine.run(flows.container_wf.spec, {"word": "hi"}))
    assert result.phase == Phase.SUCCEEDED
    assert platform.commands == [] and platform.python_jobs == []
    assert {h["platform"] for h in handles(engine, result.execution_id)} == {"local"}
    started = next(e for e in engine.store.events(result.execution_id) if e.kind == "execution")
    assert started.data["platform"] == "local"


def test_a_resume_runs_on_the_platform_the_execution_started_on(recording, tmp_path: Path):
    engine, platform = recording
    marker = tmp_path / "marker"
    first = asyncio.run(engine.run(flows.permanent_wf.spec, {"marker": str(marker)},
                                   RunOptions(platform="recording")))
    assert first.phase == Phase.FAILED
    jobs = len(platform.python_jobs)
    resumed = asyncio.run(engine.resume(first.execution_id))
    assert resumed.phase == Phase.FAILED
    assert len(platform.python_jobs) > jobs  # the resumed attempt went to the same platform
    assert {h["platform"] for h in handles(engine, first.execution_id)} == {"recording"}


def test_an_unknown_platform_is_an_error_naming_the_installed_ones(recording):
    engine, _ = recording
    with pytest.raises(UnknownPlatformError, match=r"unknown platform 'moon'.*Installed platforms: kubernetes, local, recording"):
        asyncio.run(engine.run(flows.arithmetic.spec, {"a": 1}, RunOptions(platform="moon")))
    assert engine.store.list_executions() == []  # nothing was created
