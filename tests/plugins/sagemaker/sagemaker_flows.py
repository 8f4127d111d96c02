"""Tasks and workflows of the plait-sagemaker tests (a module, so worker processes import it).

The training scripts are in ``scripts/`` (shipped whole as the source_dir). AWS-mode tasks
point at the moto stand-in through ``AWS_ENDPOINT_URL``, which the ``stand_in`` fixture sets.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pandas as pd
import plait
from plait import File
from plait_sagemaker import training_job

SCRIPTS = Path(__file__).parent / "scripts"
BUCKET = "plait-sagemaker-tests"
ACCOUNT = "123456789012"  # moto's
AWS: dict[str, Any] = {
    "image_uri": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/trainer:1",
    "role_arn": f"arn:aws:iam::{ACCOUNT}:role/plait-tests",
    "output_s3_uri": f"s3://{BUCKET}/jobs",
    "region": "us-east-1",
}
AWS_KEYS = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]


def local_job(name: str, script: str, **options: Any) -> plait.Task[Any]:
    return training_job(name, script, source_dir=SCRIPTS, connection="local", **options)


def aws_job(name: str, script: str, **options: Any) -> plait.Task[Any]:
    return training_job(name, script, source_dir=SCRIPTS, **AWS, **options)


local_train = local_job("sm-local-train", "train.py", inputs={"data": File, "epochs": int})
local_slow = local_job("sm-local-slow", "slow.py", inputs={"marker": str, "seconds": float})
local_fail = local_job("sm-local-fail", "fail.py", inputs={"message": str})
aws_train = aws_job("sm-aws-train", "train.py", inputs={"data": File, "epochs": int})
aws_slow = aws_job("sm-aws-slow", "slow.py", inputs={"marker": str, "seconds": float})


@plait.task
def make_frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": [float(i) for i in range(n)], "y": [2.0 * i for i in range(n)]})


@plait.task
def read_model(model: File) -> str:
    """What a downstream task does with a training job's output: open its model.tar.gz."""
    with tarfile.open(fileobj=io.BytesIO(model.read_bytes()), mode="r:gz") as tar:
        member = tar.extractfile("weights.txt")
        assert member is not None
        return member.read().decode()


fit = local_job("sm-fit", "train.py", inputs={"data": pd.DataFrame, "scale": float}, hyperparameters={"epochs": 3})


@plait.workflow
def fit_and_read(n: int = 5, scale: float = 2.0) -> str:
    return read_model(model=fit(data=make_frame(n=n), scale=scale))


aws_fit = aws_job("sm-aws-fit", "train.py", inputs={"data": pd.DataFrame, "scale": float})


@plait.workflow
def fit_on_aws(n: int = 3, scale: float = 1.5) -> str:
    return read_model(model=aws_fit(data=make_frame(n=n), scale=scale))


aws_fit_with_keys = aws_job("sm-aws-fit-keys", "train.py", inputs={"data": pd.DataFrame, "scale": float},
                            secrets=AWS_KEYS)


@plait.workflow
def fit_with_keys(n: int = 3, scale: float = 1.5) -> str:
    return read_model(model=aws_fit_with_keys(data=make_frame(n=n), scale=scale))


sleeper = local_job("sm-flood", "flood.py", inputs={"item": int, "log": str, "seconds": float})


@plait.task
def count_to(n: int) -> list[int]:
    return list(range(n))


@plait.workflow
def flood(n: int, log: str, seconds: float) -> list[File]:
    return plait.map(sleeper, over=count_to(n=n), log=log, seconds=seconds)
