"""``python -m plait.runtime.remote JOB_URI``: run one Python attempt away from the engine.

What a Kubernetes pod runs (any machine with plait and the blob store's client installed
can): read the :class:`~plait.model.wire.RemoteJob` at ``JOB_URI``, fetch and unpack the
workflow's code archive, take the task's secrets out of the environment, run the attempt
with :func:`plait.runtime.attempt.run_attempt` (the code the local worker runs: one data
contract) and write its result next to the job. The task's prints go to this process's
stdout and stderr, which the platform keeps as the attempt's log. The exit code is 0 when
the attempt succeeded, 1 when it failed (the result says why), 2 when the job could not be
read (then no result is written and the platform reports this process's log).

A packed job (``items``: several map items in one pod) runs its items one after the other,
each with its output captured as its own log, and writes their results together; it exits
0 once every item has a result, whatever the items' outcomes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import posixpath
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plait.model.settings import SECRET_ENV_PREFIX, secret_env_name
from plait.model.wire import AttemptPayload, AttemptResult, RemoteJob
from plait.runtime.attempt import run_attempt
from plait.runtime.code import unpack
from plait.storage.blobs import BlobStore


def _store(uri: str) -> BlobStore:
    return BlobStore(posixpath.dirname(uri))


def prepare(job: RemoteJob) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Unpack the code (once) and take the secrets out of the environment; return what turns
    one of the job's payloads into the one to run (file paths moved into the unpacked code)."""
    root = None
    if job.code_uri:
        digest = posixpath.basename(job.code_uri).split(".", 1)[0]
        root = unpack(_store(job.code_uri).read_bytes(job.code_uri), digest)
        sys.path.insert(0, str(root))
    secrets: dict[str, str] = {}
    for name in job.secrets:
        value = os.environ.pop(SECRET_ENV_PREFIX + secret_env_name(name), None)
        if value is None:
            raise RuntimeError(f"secret {name!r} is not in this process's environment as "
                               f"{SECRET_ENV_PREFIX + secret_env_name(name)}; the platform passes it")
        secrets[name] = value

    def payload_of(raw: dict[str, Any]) -> dict[str, Any]:
        payload = AttemptPayload.model_validate(raw).model_dump()
        if root is not None and job.code_root and payload["ref"].get("file"):
            ref = dict(payload["ref"])
            ref["file"] = str(root / Path(ref["file"]).relative_to(job.code_root))
            payload["ref"] = ref
        payload["secrets"] = secrets
        payload["scratch_root"] = None  # the engine's folder does not exist here
        return payload

    return payload_of


def _checked(result: dict[str, Any]) -> dict[str, Any]:
    return AttemptResult.model_validate(result).model_dump(mode="json", exclude_none=True)


def run_items(job: RemoteJob, payload_of: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """Run a packed pod's items one after the other, each with its own captured output."""
    results: dict[str, Any] = {}
    for raw in job.items:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                result = run_attempt(payload_of(raw))
            except Exception as exc:  # a payload it cannot read fails that item, not the others
                result = {"status": "failed", "message": f"{type(exc).__name__}: {exc}",
                          "retryable": True, "error_kind": "system"}
        result["stdout"], result["stderr"] = out.getvalue() or None, err.getvalue() or None
        results[str(raw.get("attempt_id"))] = _checked(result)
        print(f"item {raw.get('item_index')}: {result['status']}", flush=True)
    return {"items": results}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m plait.runtime.remote JOB_URI", file=sys.stderr)
        return 2
    uri = args[0]
    try:
        job = RemoteJob.model_validate_json(_store(uri).read_bytes(uri))
        payload_of = prepare(job)
    except Exception:
        print(f"plait: cannot prepare the attempt from {uri}:\n{traceback.format_exc()}", file=sys.stderr)
        return 2
    if job.items:
        report = run_items(job, payload_of)
        _store(job.result_uri).write_bytes(job.result_uri, json.dumps(report).encode())
        return 0
    result = run_attempt(payload_of(job.payload))
    if result["status"] == "failed":
        print(result.get("traceback") or result["message"], file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    _store(job.result_uri).write_bytes(job.result_uri, json.dumps(_checked(result)).encode())
    return 0 if result["status"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
