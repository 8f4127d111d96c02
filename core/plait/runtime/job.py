"""The command side of a process task: read the job, write the result.

The job's folder is a local path when the command runs beside the engine (the local
platform), and a blob-store URL (``s3://...``) when it runs in a pod: the same calls work
for both, so a plugin's entrypoint (``python -m plait_spark.run JOB``) runs unchanged.
"""

from __future__ import annotations

import json
import os
import posixpath
from pathlib import Path
from typing import Any

from plait.model.settings import SECRET_ENV_PREFIX, secret_env_name
from plait.model.wire import AttemptPayload

SECRETS_ENV = "PLAIT_ATTEMPT_SECRETS"
"""The environment variable that carries the attempt's secrets (JSON) to the command."""


def _remote(where: str | os.PathLike[str]) -> bool:
    return "://" in str(where)


def _read(path: str | os.PathLike[str]) -> bytes:
    if _remote(path):
        from plait.storage.blobs import BlobStore

        return BlobStore(posixpath.dirname(str(path))).read_bytes(str(path))
    return Path(path).read_bytes()


def write_file(folder: str | os.PathLike[str], name: str, data: bytes) -> None:
    """Write ``name`` into the job's folder (local, or in the blob store), atomically."""
    if _remote(folder):
        from plait.storage.blobs import BlobStore

        store = BlobStore(str(folder))
        store.write_bytes(store.uri(name), data)
        return
    target = Path(folder) / name
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)


def read_job(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Called by the command: its ``job.json``, with the payload's secrets back from the environment.

    Locally the secrets come in one variable (:data:`SECRETS_ENV`); in a pod each is its own
    ``PLAIT_SECRET_<NAME>`` variable (a Secret reference), for the names the job lists. Either
    way the variables leave this process's environment, so what the task starts (a JVM, a
    kernel, a shell command) does not inherit the values.
    """
    job: dict[str, Any] = json.loads(_read(path))
    secrets = json.loads(os.environ.pop(SECRETS_ENV, "") or "{}")
    for name in job.get("secret_names") or ():
        value = os.environ.pop(SECRET_ENV_PREFIX + secret_env_name(name), None)
        if value is not None:
            secrets[name] = value
    if isinstance(job.get("payload"), dict):  # a payload from a newer plait is refused, not misread
        payload = AttemptPayload.model_validate(job["payload"]).model_dump()
        if job.get("code_uri"):  # away from the engine: the user's code comes as an archive
            payload["ref"] = _unpacked(job["code_uri"], job.get("code_root"), payload["ref"])
            payload["scratch_root"] = None
        job["payload"] = {**payload, "secrets": secrets}
    return job


def _unpacked(code_uri: str, code_root: str | None, ref: dict[str, Any]) -> dict[str, Any]:
    """Fetch and unpack the code archive, put it on ``sys.path``; the ref with its file there."""
    import sys

    from plait.runtime.code import unpack

    root = unpack(_read(code_uri), posixpath.basename(code_uri).split(".", 1)[0])
    sys.path.insert(0, str(root))
    ref = dict(ref)
    if ref.get("file") and code_root:
        ref["file"] = str(root / Path(ref["file"]).relative_to(code_root))
    return ref


def write_result(folder: str | os.PathLike[str], result: dict[str, Any]) -> None:
    """Called by the command: write ``result.json`` atomically, so a reader never sees half."""
    write_file(folder, "result.json", json.dumps(result).encode())
