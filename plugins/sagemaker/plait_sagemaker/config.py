"""Configuration of a SageMaker training job."""

from __future__ import annotations

import os
from typing import Literal

from plait import TaskConfig
from pydantic import ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

MODE_ENV = "PLAIT_SAGEMAKER_MODE"
"""Set to ``local`` to run every SageMaker task in local mode, whatever its ``connection``."""

Hyperparameter = StrictStr | StrictBool | StrictInt | StrictFloat


class TrainingJob(TaskConfig):
    """A SageMaker training job in script mode.

    ``entry_point`` (a path inside ``source_dir`` when that is given, else a script of its
    own) runs in the ``image_uri`` container on ``instance_count`` instances of
    ``instance_type``, with ``hyperparameters`` as command-line arguments. Its model
    artifact (``model.tar.gz``) is the task's one ``File`` output. With ``connection="aws"``
    it is a real training job (``role_arn`` and ``output_s3_uri`` needed); with ``"local"``
    the script runs on this machine under SageMaker's container contract.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    task_type = "sagemaker"

    entry_point: str
    source_dir: str | None = None
    hyperparameters: dict[str, Hyperparameter] = {}
    instance_type: str = "ml.m5.large"
    instance_count: int = Field(1, ge=1)
    volume_size_gb: int = Field(30, ge=1)
    image_uri: str | None = None
    role_arn: str | None = None
    output_s3_uri: str | None = None
    region: str | None = None
    connection: Literal["aws", "local"] = "aws"
    endpoint_url: str | None = None
    """One endpoint for SageMaker, S3 and STS (a stand-in such as moto); None: AWS's own."""
    max_runtime_s: int = Field(24 * 3600, ge=1)

    @property
    def mode(self) -> str:
        """``local`` or ``aws``: the connection, unless PLAIT_SAGEMAKER_MODE=local or PLAIT_OFFLINE=1 overrides it."""
        offline = os.environ.get("PLAIT_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
        return "local" if offline or os.environ.get(MODE_ENV, "").strip().lower() == "local" else self.connection
