"""Fixtures of the plait-sagemaker tests: the moto stand-in for SageMaker, S3 and STS."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

MOTO_MISSING = 'the SageMaker tests need the moto server: pip install "moto[server]"'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MotoServer:
    endpoint: str
    control: Path


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory):
    """A moto server in its own process, with SageMaker training jobs that behave like real ones.

    moto's training jobs are Completed as soon as they are created, StopTrainingJob is not
    implemented, a job name can be created twice, and no model artifact is ever written.
    So the server is started from ``moto_sagemaker.py``, which patches moto's SageMaker
    backend in that process before running ``moto.server``: jobs stay InProgress until a
    rule in the control folder completes or fails them (writing the model.tar.gz to moto's
    S3 on completion), stop works (Stopping, then Stopped), a duplicate name is
    ResourceInUse, and created and stopped jobs are logged. Everything else is moto as is.
    """
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        pytest.fail(MOTO_MISSING, pytrace=False)
    root = tmp_path_factory.mktemp("moto-sagemaker")
    control = root / "control"
    control.mkdir()
    log = root / "server.log"
    port = _free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(HERE.parents[1] / "standins" / "moto_sagemaker.py"), "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "MOTO_SAGEMAKER_CONTROL": str(control)})
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the moto server exited with code {proc.returncode}:\n{log.read_text()}\n{MOTO_MISSING}",
                            pytrace=False)
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
                break
            except urllib.error.HTTPError:
                break  # it answers HTTP, which is all we wait for
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the moto server did not answer on {endpoint} within 30s:\n{log.read_text()}",
                                pytrace=False)
                time.sleep(0.1)
        yield MotoServer(endpoint, control)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class StandIn:
    """One test's view of the stand-in: its rules, its logs, and boto3 clients onto it."""

    def __init__(self, server: MotoServer, model: Path) -> None:
        import boto3

        self.endpoint = server.endpoint
        self.control = server.control
        self.model = model
        self.s3 = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")
        self.sagemaker = boto3.client("sagemaker", endpoint_url=self.endpoint, region_name="us-east-1")

    def rule(self, job: str | None = None, **rule: Any) -> None:
        """What the job named ``job`` (or, with None, any job created from now on) does."""
        if rule.get("status") == "Completed":
            rule.setdefault("model", str(self.model))
        (self.control / f"{job or 'default'}.json").write_text(json.dumps(rule))

    def created(self) -> list[str]:
        path = self.control / "created"
        return path.read_text().split() if path.exists() else []

    def stopped(self) -> list[str]:
        path = self.control / "stopped"
        return path.read_text().split() if path.exists() else []

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


@pytest.fixture
def stand_in(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> StandIn:
    """A clean stand-in (moto reset, no rules), dummy credentials and the endpoint in the
    environment (as a user would set them), and the test bucket."""
    import sagemaker_flows
    from plait_sagemaker.job import pack_folder

    urllib.request.urlopen(urllib.request.Request(moto_server.endpoint + "/moto-api/reset", method="POST")).close()
    for path in moto_server.control.iterdir():
        path.unlink()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": moto_server.endpoint, "AWS_EC2_METADATA_DISABLED": "true"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "PLAIT_SAGEMAKER_MODE"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "stand-in-model"
    folder.mkdir()
    (folder / "weights.txt").write_text("trained in the stand-in\n")
    stand_in = StandIn(moto_server, pack_folder(folder, tmp_path / "stand-in-model.tar.gz"))
    stand_in.s3.create_bucket(Bucket=sagemaker_flows.BUCKET)
    return stand_in
