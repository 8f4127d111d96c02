"""Local mode: the entry point runs on this machine under SageMaker's container contract.

Each attempt gets an ``opt/ml`` tree in its folder, laid out as a training container sees
``/opt/ml`` (``input/data/<channel>/``, ``input/config/*.json``, ``model/``, ``output/``,
``code/``), and the script runs as a supervised process (``plait.local.LocalProcess``: a
second submit attaches, abort kills its whole tree) with the ``SM_*`` environment of the
SageMaker training toolkit and the hyperparameters as ``--name value`` arguments. On exit 0
``model/`` is packed as ``model.tar.gz``, the task's File output.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from plait import AttemptContext, Status
from plait.sdk import ErrorKind, Handle, LocalProcess, Phase, TaskTemplate

from plait_sagemaker import job
from plait_sagemaker.config import TrainingJob

HOST = "algo-1"
FAILURE_LIMIT = 8000


class LocalTrainer:
    """Runs training jobs as local processes; the state is in each attempt's folder."""

    def __init__(self) -> None:
        self.processes = LocalProcess()

    def submit(self, ctx: AttemptContext, task: TaskTemplate, config: TrainingJob) -> Handle:
        base = ctx.folder / "sagemaker"
        root = base / "opt" / "ml"
        name = job.job_name(ctx)
        handle = job.JobHandle(mode="local", job=name, task=task.name, output=job.output_name(task), root=str(root))
        process = base / "process"
        if not (process / "pid").exists():  # not started yet: lay out the container's tree
            argv, env = self._prepare(ctx, task, config, root, name)
        else:
            argv, env = [], {}  # attaching: LocalProcess only reads the pid
        started = self.processes.start(process, argv, env=env, cwd=str(root / "code"))
        return {**handle.to_json(), **started}

    def _prepare(self, ctx: AttemptContext, task: TaskTemplate, config: TrainingJob, root: Path,
                 name: str) -> tuple[list[str], dict[str, str]]:
        if root.exists():  # a submit that died half-way: start again from a clean tree
            shutil.rmtree(root)
        for sub in ("input/config", "input/data", "model", "output/data", "output/intermediate", "code"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        code_root, files = job.code_files(config)
        for path in files:
            target = root / "code" / path.relative_to(code_root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        channels = job.channels(task)
        for channel, kind in channels.items():
            job.fetch_channel(ctx, channel, kind, root / "input" / "data" / channel)
        values = job.hyperparameters(ctx, task, config)
        resource = {"current_host": HOST, "hosts": [HOST], "network_interface_name": "eth0",
                    "current_instance_type": config.instance_type, "current_group_name": "homogeneousCluster",
                    "instance_groups": [{"instance_group_name": "homogeneousCluster",
                                         "instance_type": config.instance_type, "hosts": [HOST]}]}
        data_config = {c: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                           "RecordWrapperType": "None"} for c in channels}
        config_dir = root / "input" / "config"
        (config_dir / "hyperparameters.json").write_text(json.dumps(job.encode(values)))
        (config_dir / "resourceconfig.json").write_text(json.dumps(resource))
        (config_dir / "inputdataconfig.json").write_text(json.dumps(data_config))
        program = job.program(config)
        args = command_line_arguments(values)
        env = {**task.env, **training_environment(root, name, program, values, channels, resource, data_config,
                                                  args, config.instance_type)}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root / "code"), os.environ.get("PYTHONPATH")) if p)
        return [*interpreter(program), program, *args], env

    def poll(self, ctx: AttemptContext, handle: Handle) -> Status:
        code = self.processes.exit_code(handle)
        links = self._links(handle)
        if code is None:
            return Status(Phase.RUNNING, log_links=links)
        if (Path(handle["workdir"]) / "aborted").exists():
            return Status(Phase.ABORTED, "the training job was stopped", log_links=links)
        root = Path(handle["root"])
        if code == 0:
            artifact = root / "output" / "model.tar.gz"
            if not artifact.exists():
                job.pack_folder(root / "model", artifact)
            return Status.succeeded({handle["output"]: {"uri": ctx.blobs.put_file(artifact)}}, log_links=links)
        if code == -9:
            return Status.failed(f"the training process of {handle['job']} vanished without an exit code "
                                 "(killed from outside, or the machine restarted)", error_kind=ErrorKind.SYSTEM,
                                 log_links=links)
        return Status.failed(f"the training script exited with code {code}: {self._reason(handle, root)}",
                             log_links=links)

    def _reason(self, handle: Handle, root: Path) -> str:
        """Like SageMaker: what the script wrote to output/failure, else the end of stderr."""
        failure = root / "output" / "failure"
        if failure.is_file() and failure.read_text().strip():
            return failure.read_text().strip()[-FAILURE_LIMIT:]
        _, stderr = self.processes.logs(handle)
        return "\n".join(stderr.strip().splitlines()[-30:])[-FAILURE_LIMIT:] or "(nothing on stderr)"

    @staticmethod
    def _links(handle: Handle) -> dict[str, str]:
        workdir = Path(handle["workdir"])
        return {name: str(workdir / f"{name}.log") for name in ("stdout", "stderr")}

    def abort(self, ctx: AttemptContext, handle: Handle) -> None:
        if self.processes.exit_code(handle) is None:
            (Path(handle["workdir"]) / "aborted").touch()
        self.processes.kill(handle)

    def cleanup(self, ctx: AttemptContext, handle: Handle) -> None:
        self.processes.kill(handle)
        self.processes.forget(handle)
        # The copies of the input data and code; logs, model/ and output/ stay for inspection.
        for sub in ("input/data", "code"):
            shutil.rmtree(Path(handle["root"]) / sub, ignore_errors=True)


def interpreter(program: str) -> list[str]:
    """How the training toolkit runs an entry point: Python, a shell script, or as is."""
    if program.endswith(".py"):
        return [sys.executable]
    if program.endswith(".sh"):
        return ["/bin/sh"]
    return []


def command_line_arguments(values: dict[str, Any]) -> list[str]:
    """Hyperparameters as script mode passes them: sorted ``--name value`` pairs."""
    args: list[str] = []
    for name in sorted(values):
        value = values[name]
        args.append(f"--{name}" if len(name) > 1 else f"-{name}")
        if isinstance(value, dict):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append(str(value))
    return args


def _env_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _gpus() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    return len([d for d in Path("/dev").glob("nvidia[0-9]*")])


def training_environment(root: Path, name: str, program: str, values: dict[str, Any], channels: dict[str, str],
                         resource: dict[str, Any], data_config: dict[str, Any], args: list[str],
                         instance_type: str) -> dict[str, str]:
    """The ``SM_*`` variables the SageMaker training toolkit sets, pointing into ``root``."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    dirs = {"channel_input_dirs": {c: str(root / "input" / "data" / c) for c in sorted(channels)}}
    env: dict[str, Any] = {
        "model_dir": str(root / "model"),
        "output_data_dir": str(root / "output" / "data"),
        "output_dir": str(root / "output"),
        "output_intermediate_dir": str(root / "output" / "intermediate"),
        "input_dir": str(root / "input"),
        "input_config_dir": str(root / "input" / "config"),
        "module_dir": str(root / "code"),
        "module_name": program.rsplit(".", 1)[0] if program.endswith((".py", ".sh")) else program,
        "user_entry_point": program,
        "hosts": [HOST],
        "current_host": HOST,
        "current_instance_type": instance_type,
        "network_interface_name": "eth0",
        "num_cpus": cpus,
        "num_gpus": _gpus(),
        "hyperparameters": values,
        "resource_config": resource,
        "input_data_config": data_config,
        "job_name": name,
        "log_level": 20,
        "framework_module": None,
        "additional_framework_parameters": {},
        **dirs,
    }
    out = {f"SM_{key.upper()}": _env_value(value) for key, value in env.items()
           if key not in ("hyperparameters", "channel_input_dirs", "job_name", "framework_module",
                          "additional_framework_parameters")}
    out["SM_CHANNELS"] = _env_value(sorted(channels))
    out.update({f"SM_CHANNEL_{c.upper()}": d for c, d in dirs["channel_input_dirs"].items()})
    out["SM_HPS"] = _env_value(values)
    out.update({f"SM_HP_{k.upper()}": _env_value(v) for k, v in values.items()})
    out["SM_USER_ARGS"] = _env_value(args)
    out["SM_FRAMEWORK_PARAMS"] = "{}"
    out["SM_TRAINING_ENV"] = _env_value(env)
    out["TRAINING_JOB_NAME"] = name
    return out
