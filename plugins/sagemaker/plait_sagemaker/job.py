"""What AWS and local mode share: the job's name, its handle, channels and hyperparameters.

A task input of type ``File``, ``Directory`` or data frame is an input channel named after
the input; any other input is a hyperparameter (merged over the static ones). Values are
JSON-encoded strings, as the SageMaker Python SDK sends them.
"""

from __future__ import annotations

import gzip
import json
import os
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from plait import AttemptContext
from plait.sdk import TaskTemplate, ValueIO, load_offloaded

from plait_sagemaker.config import TrainingJob

CHANNEL_KINDS = ("file", "directory", "dataframe")


def job_name(ctx: AttemptContext) -> str:
    """The training job's name: stable per attempt, within SageMaker's rules ([a-zA-Z0-9-], 63)."""
    return ctx.external_name(63).lstrip("-")


@dataclass(frozen=True)
class JobHandle:
    """What ``submit`` returns, as a JSON dict: never credentials, only where the job is."""

    mode: str
    job: str
    task: str
    output: str
    """The name of the task's File output (the model artifact)."""
    region: str | None = None
    endpoint: str | None = None
    uploads: tuple[str, ...] = ()
    """AWS mode: S3 prefixes that submit uploaded (channels, code) and cleanup deletes."""
    root: str | None = None
    """Local mode: the attempt's ``opt/ml`` tree (LocalProcess adds ``workdir`` and ``pid``)."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["uploads"] = list(self.uploads)
        return {k: v for k, v in data.items() if v not in (None, [])}


def output_name(task: TaskTemplate) -> str:
    return next(iter(task.interface.outputs))


def channels(task: TaskTemplate) -> dict[str, str]:
    """Input channels: input name to kind (file, directory, dataframe)."""
    return {n: spec.kind for n, spec in task.interface.inputs.items() if spec.kind in CHANNEL_KINDS}


def hyperparameters(ctx: AttemptContext, task: TaskTemplate, config: TrainingJob) -> dict[str, Any]:
    """The static hyperparameters, overridden by the task's scalar inputs (as JSON values)."""
    values: dict[str, Any] = dict(config.hyperparameters)
    vio = ValueIO(ctx.blobs, where=f"sagemaker task {task.name}")
    for name, spec in task.interface.inputs.items():
        if spec.kind not in CHANNEL_KINDS:
            values[name] = load_offloaded(ctx.inputs[name], vio)
    return values


def encode(values: dict[str, Any]) -> dict[str, str]:
    """Hyperparameters as SageMaker takes them: JSON strings, as the SageMaker SDK sends them."""
    return {name: json.dumps(value) for name, value in values.items()}


def fetch_channel(ctx: AttemptContext, name: str, kind: str, target: Path) -> Path:
    """Copy input ``name`` from the blob store into the folder ``target`` (created)."""
    literal = ctx.inputs[name]
    target.mkdir(parents=True, exist_ok=True)
    if kind == "directory":
        ctx.blobs.get_dir(literal["uri"], target)
    elif kind == "dataframe":
        ctx.blobs.get_file(literal["uri"], target / f"{name}.parquet")
    else:
        ctx.blobs.get_file(literal["uri"], target / literal["uri"].rsplit("/", 1)[-1])
    return target


def code_files(config: TrainingJob) -> tuple[Path, list[Path]]:
    """The folder the code comes from and the files of it that go into the job."""
    if config.source_dir:
        root = Path(config.source_dir)
        files = [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        return root, sorted(files)
    script = Path(config.entry_point)
    return script.parent, [script]


def program(config: TrainingJob) -> str:
    """The entry point as the container runs it: relative to the code folder."""
    return config.entry_point if config.source_dir else Path(config.entry_point).name


def pack(root: Path, files: list[Path], target: Path) -> Path:
    """Write ``files`` (under ``root``) as a tar.gz at ``target``, byte for byte reproducible.

    No timestamps or owners, so the same model gives the same blob (and cache keys hold).
    """
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(root)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.pax_headers = {}
            if info.isfile():
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    os.replace(tmp, target)
    return target


def pack_folder(folder: Path, target: Path) -> Path:
    """``folder``'s whole content as a reproducible tar.gz (SageMaker's model.tar.gz layout)."""
    return pack(folder, sorted(folder.rglob("*")), target)
