"""The command side of a process task: read the job, write the result."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from plait.model.wire import AttemptPayload

SECRETS_ENV = "PLAIT_ATTEMPT_SECRETS"
"""The environment variable that carries the attempt's secrets (JSON) to the command."""


def read_job(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Called by the command: its ``job.json``, with the payload's secrets back from the environment.

    The variable leaves this process's environment, so what the task starts (a JVM, a kernel,
    a shell command) does not inherit the values.
    """
    job: dict[str, Any] = json.loads(Path(path).read_text())
    secrets = json.loads(os.environ.pop(SECRETS_ENV, "") or "{}")
    if isinstance(job.get("payload"), dict):  # a payload from a newer plait is refused, not misread
        payload = AttemptPayload.model_validate(job["payload"])
        job["payload"] = {**payload.model_dump(), "secrets": secrets}
    return job


def write_result(folder: str | os.PathLike[str], result: dict[str, Any]) -> None:
    """Called by the command: write ``result.json`` atomically, so a reader never sees half."""
    target = Path(folder) / "result.json"
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, target)

