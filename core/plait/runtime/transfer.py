"""Moving a container task's files: its inputs in before the command, its outputs out after.

The container task runs any image, with no plait inside it. Where its command does not run
on the engine's machine (a Kubernetes pod), plait's own steps around it do the transfers, on
plait's image and through a shared folder (``ContainerJob.root``):

``python -m plait.runtime.transfer download JOB_URI`` fetches the file and folder inputs;
``python -m plait.runtime.transfer upload JOB_URI`` reads what the command wrote and writes the
attempt's result. :func:`collect_outputs` is also what the local platform uses, so an output
reads the same wherever the command ran.
"""

from __future__ import annotations

import json
import posixpath
import sys
import traceback
from pathlib import Path
from typing import Any

from plait.model.wire import AttemptResult, ContainerJob
from plait.storage.blobs import BlobStore


def collect_outputs(outdir: Path, kinds: dict[str, str], blobs: BlobStore) -> tuple[dict[str, Any], str | None]:
    """The outputs the command wrote in ``outdir`` (one file or folder per output) as literals,
    files and folders stored in ``blobs``; or the error that says which is missing or malformed."""
    outputs: dict[str, Any] = {}
    for name, kind in kinds.items():
        path = outdir / name
        if not path.exists():
            return {}, f"the command did not write output {name!r} (expected the file {path})"
        if kind == "file":
            outputs[name] = {"uri": blobs.put_file(path)}
        elif kind == "directory":
            outputs[name] = {"uri": blobs.put_dir(path)}
        elif kind == "str":
            outputs[name] = path.read_text().rstrip("\n")
        else:
            try:
                outputs[name] = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                return {}, f"output {name!r} ({kind}) is not valid JSON: {exc}"
    return outputs, None


def _job(uri: str) -> ContainerJob:
    return ContainerJob.model_validate_json(BlobStore(posixpath.dirname(uri)).read_bytes(uri))


def download(job: ContainerJob) -> None:
    """Fetch the file and folder inputs into ``root``/inputs; make ``root``/outputs."""
    blobs = BlobStore(job.blobs)
    root = Path(job.root)
    for name, item in job.inputs.items():
        if item["kind"] == "directory":
            blobs.get_dir(item["uri"], root / "inputs" / name)
        else:
            blobs.get_file(item["uri"], root / "inputs" / name)
        print(f"input {name}: {item['uri']}", flush=True)
    (root / "outputs").mkdir(parents=True, exist_ok=True)
    (root / "outputs").chmod(0o777)  # the user's image may run as any user


def upload(job: ContainerJob) -> dict[str, Any]:
    """Store what the command wrote and write the attempt's result; return it."""
    blobs = BlobStore(job.blobs)
    outputs, error = collect_outputs(Path(job.root) / "outputs", job.outputs, blobs)
    if error is not None:
        result: dict[str, Any] = {"status": "failed", "message": error, "retryable": False, "error_kind": "user"}
    else:
        result = {"status": "succeeded", "outputs": outputs}
    checked = AttemptResult.model_validate(result).model_dump(mode="json", exclude_none=True)
    blobs.write_bytes(job.result_uri, json.dumps(checked).encode())
    return checked


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in ("download", "upload"):
        print("usage: python -m plait.runtime.transfer download|upload JOB_URI", file=sys.stderr)
        return 2
    try:
        job = _job(args[1])
        if args[0] == "download":
            download(job)
            return 0
        result = upload(job)
    except Exception:
        print(f"plait: the {args[0]} step failed:\n{traceback.format_exc()}", file=sys.stderr)
        return 1
    print(f"outputs: {result['status']}" + (f": {result['message']}" if result.get("message") else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
