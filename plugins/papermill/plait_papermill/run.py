"""``python -m plait_papermill.run JOB.json``: execute one notebook, write RESULT.json beside it.

Runs in its own process (supervised by plait's LocalProcess) so an abort kills it, and
writes a result the task type reads: recorded outputs, or the failing cell.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any


def main(job_path: str) -> int:
    from plait.sdk import read_job, write_result

    job = read_job(job_path)  # before the kernel starts: it does not inherit the secrets
    remote = "notebook_uri" in job  # in a pod: the job, the notebook and the inputs are in the blob store
    workdir = Path(tempfile.mkdtemp(prefix="plait-notebook-")) if remote else Path(job["workdir"])
    if remote:
        job = _fetch(job, workdir)
    result: dict[str, Any]
    os.environ["PLAIT_NOTEBOOK_RECORD"] = str(workdir / "record.jsonl")
    import papermill
    from papermill.exceptions import PapermillExecutionError

    executed = workdir / "executed.ipynb"
    try:
        papermill.execute_notebook(
            job["path"], str(executed), parameters=job["parameters"], kernel_name=job["kernel"],
            progress_bar=False, execution_timeout=job.get("cell_timeout"), cwd=str(Path(job["path"]).parent),
            stdout_file=sys.stdout, stderr_file=sys.stderr,  # what the cells print is the attempt's log
        )
        result = {"status": "succeeded", "records": _records(workdir / "record.jsonl")}
    except PapermillExecutionError as exc:
        number, source = _failed_cell(executed, exc.exec_count)
        result = {"status": "failed", "cell": number, "ename": exc.ename, "evalue": exc.evalue,
                  "source": source, "traceback": _plain(exc.traceback)}
    except Exception as exc:  # a missing kernel, an unreadable notebook
        result = {"status": "error", "message": f"{type(exc).__name__}: {exc}"}
    _render_html(executed, workdir / "report.html")
    if remote:
        result = _stored(job, workdir, result)
    write_result(job["workdir"] if remote else workdir, result)
    return 0


def _fetch(job: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """In a pod: the notebook and the file inputs, fetched from the blob store into ``workdir``."""
    from plait.sdk import BlobStore

    blobs = BlobStore(job["blobs"])
    notebook = blobs.get_file(job["notebook_uri"], workdir / "notebook" / job["path"])
    parameters = {}
    for name, value in job["parameters"].items():
        if isinstance(value, dict) and "$blob" in value:
            target = workdir / "inputs" / (f"{name}.parquet" if value["kind"] == "dataframe" else name)
            fetch = blobs.get_dir if value["kind"] == "directory" else blobs.get_file
            value = str(fetch(value["$blob"], target))
        parameters[name] = value
    return {**job, "path": str(notebook), "parameters": parameters}


def _stored(job: dict[str, Any], workdir: Path, result: dict[str, Any]) -> dict[str, Any]:
    """In a pod: the executed notebook and report stored, the records turned into outputs."""
    from plait.sdk import BlobStore

    blobs = BlobStore(job["blobs"])
    artifacts = {name: blobs.put_file(workdir / file)
                 for name, file in (("notebook", "executed.ipynb"), ("report", "report.html"))
                 if (workdir / file).exists()}
    result = {**result, "artifacts": artifacts}
    if result["status"] != "succeeded":
        return result
    outputs: dict[str, Any] = {}
    for name, kind in job["outputs"].items():
        if name not in result["records"]:
            return {"status": "error", "artifacts": artifacts,
                    "message": f"the notebook did not record output {name!r}: call "
                               f"plait_papermill.record({name!r}, value) in a cell"}
        value = result["records"][name]
        if kind in ("file", "dataframe") and isinstance(value, dict) and "$path" in value:
            path = Path(value["$path"])
            if kind == "file":
                value = {"uri": blobs.put_file(path)}
            else:
                import pyarrow.parquet as pq

                value = {"uri": blobs.put_bytes(path.read_bytes(), ".parquet"), "format": "parquet",
                         "rows": pq.read_metadata(path).num_rows}
        outputs[name] = value
    return {**result, "outputs": outputs}


def _records(path: Path) -> dict[str, Any]:
    records: dict[str, Any] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            item = json.loads(line)
            records[item["name"]] = item["value"]
    return records


def _failed_cell(notebook: Path, exec_count: int) -> tuple[int, str]:
    """The failing cell's number in the user's notebook (papermill's injected cell not
    counted), and its source."""
    try:
        cells = json.loads(notebook.read_text())["cells"]
    except (OSError, KeyError, ValueError):
        return exec_count, ""
    number = 0
    for cell in cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags or any(t.startswith("papermill-error-cell") for t in tags):
            continue  # cells papermill added, not the user's
        number += 1
        if cell.get("execution_count") == exec_count:
            source = cell["source"]
            return number, "".join(source) if isinstance(source, list) else source
    return exec_count, ""


def _plain(lines: list[str]) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(lines))


def _render_html(notebook: Path, target: Path) -> None:
    if not notebook.exists():
        return
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(str(notebook), as_version=4))
    target.write_text(body)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
