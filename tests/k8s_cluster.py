"""An emulated cluster for the Kubernetes platform's tests: API server, node and S3.

:class:`Cluster` starts the moto server (S3, the blob store the engine and the pods share),
the Kubernetes API emulator (:class:`plait.testing.KubeAPI`) and one simulated node
(:class:`plait.testing.Kubelet`) whose "image" is this test environment (its ``python`` is the
virtual environment's, with plait installed; the user's code is not on its path: it arrives in
the code archive). It creates what a cluster admin would (the tenant namespace, the Secret
with the blob store's credentials, the Secret of the tasks' secrets) and writes a kubeconfig.
:meth:`Cluster.engine_env` is the environment an engine process (``plait run --platform
kubernetes``) needs to use it, as a user would set it.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from plait.platforms.kubernetes.config import KubernetesConfig
from plait.testing.kubeapi import KubeAPI
from plait.testing.kubelet import Kubelet

MOTO_MISSING = 'the Kubernetes platform tests need the moto server for S3: pip install "moto[server]"'
NAMESPACE = "default-development"
"""The namespace of project ``default``, domain ``development`` (the template's default)."""
WORK = ("pods", "sparkapplications.sparkoperator.k8s.io", "pytorchjobs.kubeflow.org")
"""The kinds of object an attempt runs as on the emulated cluster."""
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """The emulated cluster and its S3; a context manager."""

    def __init__(self, root: Path, *, capacity: dict[str, str] | None = None,
                 secrets: dict[str, str] | None = None, namespaces: tuple[str, ...] = (NAMESPACE,),
                 operators: bool = False) -> None:
        self.root = root
        self.capacity = capacity or {"cpu": "8", "memory": "16Gi", "nvidia.com/gpu": "1"}
        self.secrets = dict(secrets or {})
        self.namespaces = namespaces
        self.bucket = f"plait-{uuid.uuid4().hex[:10]}"
        self._moto: subprocess.Popen[bytes] | None = None
        self.kube: KubeAPI | None = None
        self.node: Kubelet | None = None
        self.operators = operators
        """Also run the simulated Spark and training operators (SparkApplication, PyTorchJob)."""
        self._operators: list[Any] = []

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._start_moto()
            self.kube = KubeAPI(graceful_pods=True, namespaces=self.namespaces).start()
            for ns in self.namespaces:
                self._secret(ns, "aws-credentials", AWS)
                self._secret(ns, "plait-secrets", self.secrets)
            venv_bin = str(Path(sys.executable).parent)
            self.node = Kubelet(self.kube, capacity=self.capacity, workdir=self.root / "node",
                                image_env={"PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
                                           "HOME": "/root"}).start()
            if self.operators:
                from plait.testing.operators import SparkOperator, TrainingOperator

                self._operators = [SparkOperator(self.kube).start(), TrainingOperator(self.kube).start()]
            self.kubeconfig = self.root / "kubeconfig"
            self.kubeconfig.write_text(
                "apiVersion: v1\nkind: Config\ncurrent-context: emulated\n"
                f"clusters:\n- name: emulated\n  cluster:\n    server: {self.kube.url}\n"
                "contexts:\n- name: emulated\n  context:\n    cluster: emulated\n    user: tester\n"
                "users:\n- name: tester\n  user:\n    token: emulated-token\n")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            for operator in self._operators:
                operator.stop()  # raises what went wrong inside an operator, after stopping
        finally:
            self._stop_the_rest()

    def _stop_the_rest(self) -> None:
        if self.node is not None:
            self.node.stop()
        if self.kube is not None:
            self.kube.stop()
        if self._moto is not None:
            self._moto.terminate()
            try:
                self._moto.wait(10)
            except subprocess.TimeoutExpired:
                self._moto.kill()
                self._moto.wait()

    def _start_moto(self) -> None:
        import importlib.util

        if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
            pytest.fail(MOTO_MISSING, pytrace=False)
        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        log = open(self.root / "moto.log", "wb")  # noqa: SIM115 - the server writes to it until stopped
        self._moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                      stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self._moto.poll() is not None:
                pytest.fail(f"the moto server exited:\n{(self.root / 'moto.log').read_text()}\n{MOTO_MISSING}",
                            pytrace=False)
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1).close()
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                assert time.monotonic() < deadline, "the moto server did not answer within 30s"
                time.sleep(0.1)
        import boto3

        boto3.client("s3", endpoint_url=self.endpoint, **_aws_kwargs()).create_bucket(Bucket=self.bucket)

    def _secret(self, namespace: str, name: str, data: dict[str, str]) -> None:
        assert self.kube is not None
        self.kube.create("secrets", {"metadata": {"name": name, "namespace": namespace},
                                     "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}},
                         namespace)

    # -- what an engine needs -------------------------------------------------------------------

    @property
    def blob_url(self) -> str:
        return f"s3://{self.bucket}/plait"

    def pod_env(self) -> dict[str, str]:
        """What every task pod gets besides the credentials Secret: where S3 is."""
        return {"FSSPEC_S3_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": "us-east-1",
                "PLAIT_CODE_CACHE": str(self.root / "code-cache")}

    def config(self, **overrides: Any) -> KubernetesConfig:
        """The platform's configuration for this cluster, built in code."""
        values: dict[str, Any] = {"blob_url": self.blob_url, "kubeconfig": str(self.kubeconfig),
                                  "env": self.pod_env(), "env_from_secrets": ("aws-credentials",),
                                  "default_cpu": "500m", "default_memory": "256Mi"}
        return KubernetesConfig(**{**values, **overrides})

    def engine_env(self, home: Path, **extra: str) -> dict[str, str]:
        """The environment of ``plait run --platform kubernetes`` against this cluster."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PLAIT_", "KUBECONFIG", "AWS_"))}
        env.update(AWS)
        env.update({
            "PLAIT_HOME": str(home), "PLAIT_BLOB_URL": self.blob_url,
            "FSSPEC_S3_ENDPOINT_URL": self.endpoint,
            "PLAIT_K8S_KUBECONFIG": str(self.kubeconfig),
            "PLAIT_K8S_ENV": ",".join(f"{k}={v}" for k, v in self.pod_env().items()),
            "PLAIT_K8S_ENV_FROM_SECRETS": "aws-credentials",
            "PLAIT_K8S_DEFAULT_CPU": "500m", "PLAIT_K8S_DEFAULT_MEMORY": "256Mi",
        })
        env.update(extra)
        return env

    def pods(self, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
        assert self.kube is not None
        return self.kube.objects("pods", namespace)

    def left(self, namespace: str = NAMESPACE) -> list[str]:
        """What work still stands in ``namespace``: its pods, SparkApplications and PyTorchJobs."""
        assert self.kube is not None
        return [f"{kind} {obj['metadata']['name']}" for kind in WORK
                for obj in self.kube.objects(kind, namespace)]

    def wait_until_empty(self, namespace: str = NAMESPACE, timeout: float = 30) -> None:
        """Wait until the work of the tests before is gone from ``namespace``: what a test
        finished, aborted or cleaned up must not keep running on the cluster."""
        from engine_process import wait_for

        wait_for(lambda: not self.left(namespace), f"nothing left running in {namespace}: {self.left(namespace)}",
                 timeout)


def _aws_kwargs() -> dict[str, str]:
    return {"aws_access_key_id": AWS["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": AWS["AWS_SECRET_ACCESS_KEY"],
            "region_name": AWS["AWS_DEFAULT_REGION"]}


class OnKubernetes:
    """Mix into a lifecycle suite (``TaskTypeLifecycleTests``) to run its cases on the
    emulated cluster: the test module defines a ``cluster`` fixture, and ``case`` returns
    ``self.placed(case)``. This process is then the engine: it reads and writes S3 too."""

    platform: Any
    cluster: Cluster

    @pytest.fixture(autouse=True)
    def _on_cluster(self, cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        import fsspec
        from plait.platforms.kubernetes.platform import KubernetesPlatform

        for name, value in AWS.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": cluster.endpoint})
        self.cluster = cluster
        self.platform = KubernetesPlatform(cluster.config())
        yield
        self.platform.close()
        cluster.wait_until_empty()  # an abort stops the work, a success leaves nothing behind

    def placed(self, case: Any) -> Any:
        return dataclasses.replace(case, platform=self.platform, blob_url=self.cluster.blob_url)
