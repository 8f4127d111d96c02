"""``python -m plait.runtime.remote JOB_URI``: run one Python attempt away from the engine.

What a Kubernetes pod runs (any machine with plait and the blob store's client installed
can): read the :class:`~plait.model.wire.RemoteJob` at ``JOB_URI``, fetch and unpack the
workflow's code archive, take the task's secrets out of the environment, run the attempt
with :func:`plait.runtime.attempt.run_attempt` (the code the local worker runs: one data
contract) and write its result next to the job. The task's prints go to this process's
stdout and stderr, which the platform keeps as the attempt's log. The exit code is 0 when
the attempt succeeded, 1 when it failed (the result says why), 2 when the job could not be
read (then no result is written and the platform reports this process's log).
"""

from __future__ import annotations

import json
import os
import posixpath
import sys
import traceback
from pathlib import Path
from typing import Any

from plait.model.settings import SECRET_ENV_PREFIX, secret_env_name
from plait.model.wire import AttemptPayload, AttemptResult, RemoteJob
from plait.runtime.attempt import run_attempt
from plait.runtime.code import unpack
from plait.storage.blobs import BlobStore


def _store(uri: str) -> BlobStore:
    return BlobStore(posixpath.dirname(uri))


def prepare(job: RemoteJob) -> dict[str, Any]:
    """The payload to run: code unpacked and on ``sys.path``, file paths moved there, secrets
    taken from (and out of) the environment."""
    payload = AttemptPayload.model_validate(job.payload).model_dump()
    if job.code_uri:
        digest = posixpath.basename(job.code_uri).split(".", 1)[0]
        root = unpack(_store(job.code_uri).read_bytes(job.code_uri), digest)
        sys.path.insert(0, str(root))
        ref = dict(payload["ref"])
        if ref.get("file") and job.code_root:
            ref["file"] = str(root / Path(ref["file"]).relative_to(job.code_root))
        payload["ref"] = ref
    secrets: dict[str, str] = {}
    for name in job.secrets:
        value = os.environ.pop(SECRET_ENV_PREFIX + secret_env_name(name), None)
        if value is None:
            raise RuntimeError(f"secret {name!r} is not in this process's environment as "
                               f"{SECRET_ENV_PREFIX + secret_env_name(name)}; the platform passes it")
        secrets[name] = value
    payload["secrets"] = secrets
    payload["scratch_root"] = None  # the engine's folder does not exist here
    return payload


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m plait.runtime.remote JOB_URI", file=sys.stderr)
        return 2
    uri = args[0]
    try:
        job = RemoteJob.model_validate_json(_store(uri).read_bytes(uri))
        payload = prepare(job)
    except Exception:
        print(f"plait: cannot prepare the attempt from {uri}:\n{traceback.format_exc()}", file=sys.stderr)
        return 2
    result = run_attempt(payload)
    if result["status"] == "failed":
        print(result.get("traceback") or result["message"], file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    checked = AttemptResult.model_validate(result).model_dump(mode="json", exclude_none=True)
    _store(job.result_uri).write_bytes(job.result_uri, json.dumps(checked).encode())
    return 0 if result["status"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
