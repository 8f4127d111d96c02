"""plait-sagemaker: SageMaker training jobs as typed plait tasks.

    from plait import File
    from plait_sagemaker import training_job

    train = training_job("train", "train.py", source_dir="src",
                         inputs={"data": pandas.DataFrame, "epochs": int},
                         image_uri="763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.3-cpu-py311",
                         role_arn="arn:aws:iam::123456789012:role/SageMaker",
                         output_s3_uri="s3://my-bucket/plait")

File, Directory and data-frame inputs become input channels named after the input; other
inputs become hyperparameters. The model artifact (model.tar.gz) is the task's File output.
``connection="local"`` (or ``PLAIT_SAGEMAKER_MODE=local``) runs the script on this machine
under SageMaker's container contract, without AWS.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from plait import CompileError, File, Task, external_task
from pydantic import ValidationError

from plait_sagemaker.aws import CredentialsError
from plait_sagemaker.config import MODE_ENV, TrainingJob

__all__ = ["MODE_ENV", "CredentialsError", "TrainingJob", "training_job"]


def training_job(name: str, entry_point: str | os.PathLike[str] = "train.py", *,
                 source_dir: str | os.PathLike[str] | None = None, inputs: dict[str, Any] | None = None,
                 outputs: dict[str, Any] | None = None, hyperparameters: dict[str, Any] | None = None,
                 instance_type: str = "ml.m5.large", instance_count: int = 1, volume_size_gb: int = 30,
                 image_uri: str | None = None, role_arn: str | None = None, output_s3_uri: str | None = None,
                 region: str | None = None, connection: Literal["aws", "local"] = "aws",
                 endpoint_url: str | None = None, max_runtime_s: int = 24 * 3600, **task_options: Any) -> Task[Any]:
    """A task that runs ``entry_point`` as a SageMaker training job.

    ``entry_point`` is relative to ``source_dir`` when that is given (the whole folder is
    shipped), else to the caller's working directory (the script alone is shipped).
    ``inputs`` maps names to types: ``File``, ``Directory`` and data frames are input
    channels, anything else a hyperparameter (over the static ``hyperparameters``).
    ``outputs`` is one File, the model artifact (default ``{"model": File}``).
    ``task_options`` are ``@plait.task``'s: ``retries``, ``timeout``, ``cache``, ``secrets``
    (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``), ``env``, ...
    """
    if source_dir is not None:
        source = Path(source_dir).resolve()
        script = Path(entry_point)
        if script.is_absolute() and script.resolve().is_relative_to(source):
            script = script.resolve().relative_to(source)
        code = {"source_dir": str(source), "entry_point": str(script)}
    else:
        code = {"entry_point": str(Path(entry_point).resolve())}
    try:
        config = TrainingJob(**code, hyperparameters=hyperparameters or {}, instance_type=instance_type,
                             instance_count=instance_count, volume_size_gb=volume_size_gb, image_uri=image_uri,
                             role_arn=role_arn, output_s3_uri=output_s3_uri, region=region,
                             connection=connection, endpoint_url=endpoint_url, max_runtime_s=max_runtime_s)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise CompileError(f"sagemaker task {name!r}: {problems}") from None
    return external_task(name, config, inputs=inputs, outputs=outputs or {"model": File}, **task_options)
