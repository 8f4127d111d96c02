"""AWS mode: one SageMaker training job per attempt, reached through boto3.

boto3 is imported on first use only, so building plait's plugin registry stays cheap and a
machine without boto3 still compiles workflows. Credentials come from AWS's default chain
or from the task's plait secrets (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``); they are used to sign requests and appear in no handle, status,
message or log.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plait import AttemptContext, PlaitError, Status
from plait.sdk import ErrorKind, Handle, Phase, TaskTemplate

from plait_sagemaker import job
from plait_sagemaker.config import TrainingJob

SECRET_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")

# FailureReason prefixes (and service error codes) that another attempt may get past.
_RETRYABLE = ("CapacityError", "InsufficientCapacity", "InternalServerError", "InternalFailure", "InternalError",
              "ServiceUnavailable", "ServiceError", "Throttling", "ThrottlingException", "RequestLimitExceeded",
              "ResourceLimitExceeded", "SlowDown")
_GONE = ("ValidationException", "ResourceNotFound", "ResourceNotFoundException")


class CredentialsError(PlaitError):
    """No AWS credentials were found for a SageMaker task."""


@dataclass(frozen=True)
class Credentials:
    """Keys from plait secrets, or none (AWS's default chain). Never printed."""

    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_secrets(cls, secrets: dict[str, str], task: str) -> Credentials:
        found = {_secret_key(name): value for name, value in secrets.items() if _secret_key(name) in SECRET_NAMES}
        creds = cls(found.get("AWS_ACCESS_KEY_ID"), found.get("AWS_SECRET_ACCESS_KEY"), found.get("AWS_SESSION_TOKEN"))
        if (creds.access_key_id is None) != (creds.secret_access_key is None):
            missing = "AWS_SECRET_ACCESS_KEY" if creds.secret_access_key is None else "AWS_ACCESS_KEY_ID"
            raise CredentialsError(f"sagemaker task {task!r} has one AWS key among its secrets but not "
                                   f"{missing}; add it to secrets=[...] and set PLAIT_SECRET_{missing}")
        return creds

    @property
    def given(self) -> bool:
        return self.access_key_id is not None

    def fingerprint(self) -> str:
        """A key for caches that does not hold the secrets themselves."""
        joined = "\0".join(v or "" for v in (self.access_key_id, self.secret_access_key, self.session_token))
        return hashlib.sha256(joined.encode()).hexdigest() if self.given else "default-chain"

    def redact(self, text: str) -> str:
        """``text`` with any credential in it masked: belt and braces for service messages."""
        for value in (self.access_key_id, self.secret_access_key, self.session_token):
            if value:
                text = text.replace(value, "***")
        return text


def _secret_key(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).upper()


def missing_credentials(task: str) -> CredentialsError:
    return CredentialsError(
        f"sagemaker task {task!r} found no AWS credentials. Set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or an instance role) where the engine runs, or "
        "give the task secrets=['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'] and set "
        "PLAIT_SECRET_AWS_ACCESS_KEY_ID and PLAIT_SECRET_AWS_SECRET_ACCESS_KEY. To run without AWS, "
        "set PLAIT_SAGEMAKER_MODE=local")


class Clients:
    """boto3 clients, one per (service, region, endpoint, credentials), created once and shared.

    boto3 clients are safe to share between threads; sessions are not, so creating them is
    serialised by a lock.
    """

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str | None, str | None, str], Any] = {}
        self._sessions: dict[str, Any] = {}
        self._accounts: dict[tuple[str | None, str | None, str], str] = {}
        self._lock = threading.Lock()

    def _session(self, creds: Credentials, task: str) -> Any:
        key = creds.fingerprint()
        session = self._sessions.get(key)
        if session is None:
            import boto3

            session = boto3.session.Session(aws_access_key_id=creds.access_key_id,
                                            aws_secret_access_key=creds.secret_access_key,
                                            aws_session_token=creds.session_token)
            if session.get_credentials() is None:
                raise missing_credentials(task)
            self._sessions[key] = session
        return session

    def region(self, wanted: str | None, creds: Credentials, task: str) -> str:
        if wanted:
            return wanted
        with self._lock:
            region = self._session(creds, task).region_name
        if not region:
            raise PlaitError(f"sagemaker task {task!r} has no AWS region: pass region='us-east-1' (say) "
                             "to training_job(), or set AWS_DEFAULT_REGION")
        return str(region)

    def client(self, service: str, region: str | None, endpoint: str | None, creds: Credentials, task: str) -> Any:
        key = (service, region, endpoint, creds.fingerprint())
        client = self._clients.get(key)
        if client is None:
            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    from botocore.config import Config

                    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10,
                                    read_timeout=60)
                    client = self._session(creds, task).client(service, region_name=region, endpoint_url=endpoint,
                                                               config=config)
                    self._clients[key] = client
        return client

    def account(self, region: str, endpoint: str | None, creds: Credentials, task: str) -> str:
        """The AWS account the credentials belong to (STS), looked up once."""
        key = (region, endpoint, creds.fingerprint())
        if key not in self._accounts:
            sts = self.client("sts", region, endpoint, creds, task)
            self._accounts[key] = str(sts.get_caller_identity()["Account"])
        return self._accounts[key]

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
            self._sessions.clear()


class AwsTrainer:
    """Creates, watches, stops and cleans up after SageMaker training jobs."""

    def __init__(self) -> None:
        self.clients = Clients()

    # -- submit ---------------------------------------------------------------------------

    def submit(self, ctx: AttemptContext, task: TaskTemplate, config: TrainingJob) -> Handle:
        creds = Credentials.from_secrets(ctx.secrets, task.name)
        region = self.clients.region(config.region, creds, task.name)
        sagemaker = self.clients.client("sagemaker", region, config.endpoint_url, creds, task.name)
        name = job.job_name(ctx)
        assert config.output_s3_uri is not None  # check() made sure
        base = f"{config.output_s3_uri.rstrip('/')}/{name}"
        handle = job.JobHandle(mode="aws", job=name, task=task.name, output=job.output_name(task), region=region,
                               endpoint=config.endpoint_url, uploads=(f"{base}/input/", f"{base}/code/")).to_json()
        if self._exists(sagemaker, name):
            return handle  # submitted before (an engine restart): attach
        s3 = self.clients.client("s3", region, config.endpoint_url, creds, task.name)
        try:
            request = self._request(ctx, task, config, s3, name, base, region)
            sagemaker.create_training_job(**request)
        except Exception as exc:
            if _code(exc) in ("ResourceInUse", "ResourceInUseException") or _already_exists(exc):
                return handle  # a concurrent submit of the same attempt won
            self._delete(s3, handle["uploads"])  # the engine has no handle to clean up with
            if _code(exc) in ("ValidationException", "AccessDeniedException"):
                raise PlaitError(f"SageMaker rejected training job {name}: {creds.redact(_message(exc))}") from None
            raise
        return handle

    @staticmethod
    def _exists(sagemaker: Any, name: str) -> bool:
        try:
            sagemaker.describe_training_job(TrainingJobName=name)
        except Exception as exc:
            if _code(exc) in _GONE:
                return False
            raise
        return True

    def _request(self, ctx: AttemptContext, task: TaskTemplate, config: TrainingJob, s3: Any, name: str,
                 base: str, region: str) -> dict[str, Any]:
        staging = ctx.folder / "sagemaker" / "upload"
        channels = []
        for channel, kind in job.channels(task).items():
            folder = job.fetch_channel(ctx, channel, kind, staging / "input" / channel)
            prefix = f"{base}/input/{channel}/"
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                _upload(s3, path, prefix + str(path.relative_to(folder)))
            channels.append({"ChannelName": channel, "InputMode": "File", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": prefix, "S3DataDistributionType": "FullyReplicated"}}})
        code_root, files = job.code_files(config)
        (staging / "code").mkdir(parents=True, exist_ok=True)
        tarball = job.pack(code_root, files, staging / "code" / "sourcedir.tar.gz")
        code_uri = f"{base}/code/sourcedir.tar.gz"
        _upload(s3, tarball, code_uri)
        values = job.encode(job.hyperparameters(ctx, task, config))
        values.update(job.encode({"sagemaker_program": job.program(config), "sagemaker_submit_directory": code_uri,
                                  "sagemaker_region": region, "sagemaker_container_log_level": 20}))
        assert config.image_uri is not None and config.role_arn is not None and config.output_s3_uri is not None
        request: dict[str, Any] = {
            "TrainingJobName": name,
            "AlgorithmSpecification": {"TrainingImage": config.image_uri, "TrainingInputMode": "File"},
            "RoleArn": config.role_arn,
            "HyperParameters": values,
            "OutputDataConfig": {"S3OutputPath": config.output_s3_uri.rstrip("/")},
            "ResourceConfig": {"InstanceType": config.instance_type, "InstanceCount": config.instance_count,
                               "VolumeSizeInGB": config.volume_size_gb},
            "StoppingCondition": {"MaxRuntimeInSeconds": config.max_runtime_s},
            "Tags": [{"Key": "plait:execution", "Value": _tag(ctx.execution_id)},
                     {"Key": "plait:node", "Value": _tag(ctx.node_id)},
                     {"Key": "plait:tenant", "Value": _tag(f"{ctx.project}/{ctx.domain}")}],
        }
        if channels:
            request["InputDataConfig"] = channels
        if task.env:
            request["Environment"] = dict(task.env)
        return request

    # -- poll -----------------------------------------------------------------------------

    def poll(self, ctx: AttemptContext, handle: Handle) -> Status:
        creds = Credentials.from_secrets(ctx.secrets, handle["task"])
        sagemaker = self.clients.client("sagemaker", handle["region"], handle.get("endpoint"), creds, handle["task"])
        name = handle["job"]
        links = _links(handle["region"], name)
        from botocore.exceptions import ConnectionError, HTTPClientError

        try:
            described = sagemaker.describe_training_job(TrainingJobName=name)
        except (ConnectionError, HTTPClientError) as exc:
            # The job runs on whether we can see it or not: failing the attempt here would
            # start a second job beside it, so keep asking (the task's timeout still applies).
            return Status(Phase.RUNNING, f"cannot reach SageMaker ({type(exc).__name__}); asking again",
                          log_links=links)
        except Exception as exc:
            if _code(exc) in _GONE:
                return Status.failed(f"training job {name} no longer exists in SageMaker", error_kind=ErrorKind.SYSTEM)
            if _retryable(_code(exc) or ""):
                return Status(Phase.RUNNING, f"SageMaker is busy ({_code(exc)}); asking again", log_links=links)
            raise
        state = described["TrainingJobStatus"]
        if state in ("InProgress", "Stopping"):
            detail = described.get("SecondaryStatus", "")
            return Status(Phase.RUNNING, f"{state}: {detail}" if detail and detail != state else state,
                          log_links=links)
        if state == "Stopped":
            return Status(Phase.ABORTED, f"training job {name} was stopped", log_links=links)
        if state == "Failed":
            reason = creds.redact(described.get("FailureReason") or "SageMaker gave no reason")
            return failure_status(f"training job {name} failed: {reason}", reason, links)
        artifact = described.get("ModelArtifacts", {}).get("S3ModelArtifacts")
        if not artifact:
            return Status.failed(f"training job {name} completed without a model artifact", retryable=False,
                                 log_links=links)
        s3 = self.clients.client("s3", handle["region"], handle.get("endpoint"), creds, handle["task"])
        local = ctx.folder / "sagemaker" / "model.tar.gz"
        try:
            if not local.exists():
                local.parent.mkdir(parents=True, exist_ok=True)
                bucket, key = _split(artifact)
                tmp = local.with_name("model.tar.gz.tmp")
                s3.download_file(bucket, key, str(tmp))
                tmp.replace(local)
        except Exception as exc:
            return Status.failed(f"training job {name} completed, but its model artifact {artifact} could not be "
                                 f"read: {creds.redact(_message(exc))}", error_kind=ErrorKind.SYSTEM, log_links=links)
        uri = ctx.blobs.put_file(local)
        return Status.succeeded({handle["output"]: {"uri": uri}}, log_links={**links, "model": artifact})

    # -- abort and cleanup ----------------------------------------------------------------

    def abort(self, ctx: AttemptContext, handle: Handle) -> None:
        creds = Credentials.from_secrets(ctx.secrets, handle["task"])
        sagemaker = self.clients.client("sagemaker", handle["region"], handle.get("endpoint"), creds, handle["task"])
        try:
            sagemaker.stop_training_job(TrainingJobName=handle["job"])
        except Exception as exc:
            if _code(exc) not in _GONE:  # already ended, or never created: nothing to stop
                raise

    def cleanup(self, ctx: AttemptContext, handle: Handle) -> None:
        creds = Credentials.from_secrets(ctx.secrets, handle["task"])
        s3 = self.clients.client("s3", handle["region"], handle.get("endpoint"), creds, handle["task"])
        self._delete(s3, handle.get("uploads", []))
        shutil.rmtree(ctx.folder / "sagemaker" / "upload", ignore_errors=True)
        (ctx.folder / "sagemaker" / "model.tar.gz").unlink(missing_ok=True)

    @staticmethod
    def _delete(s3: Any, prefixes: list[str]) -> None:
        for prefix in prefixes:
            bucket, key = _split(prefix)
            try:
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
                    keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                    if keys:
                        s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            except Exception as exc:
                if _code(exc) != "NoSuchBucket":
                    raise

    def pool(self, config: TrainingJob, secrets: dict[str, str], task: str) -> str:
        """``sagemaker:<account>/<region>/<instance type>``: one per account's quota."""
        creds = Credentials.from_secrets(secrets, task)
        region = self.clients.region(config.region, creds, task)
        account = self.clients.account(region, config.endpoint_url, creds, task)
        return f"sagemaker:{account}/{region}/{config.instance_type}"

    def close(self) -> None:
        self.clients.close()


def failure_status(message: str, reason: str, links: dict[str, str]) -> Status:
    """Capacity, service and throttling failures are the platform's and worth another attempt;
    a ClientError (bad role, image, data) never fixes itself; an AlgorithmError (the script
    failed) spends the task's user retries, like any user code that raises."""
    if _retryable(reason):
        return Status.failed(message, error_kind=ErrorKind.SYSTEM, log_links=links)
    if reason.startswith("ClientError"):
        return Status.failed(message, retryable=False, log_links=links)
    return Status.failed(message, log_links=links)


def _retryable(reason: str) -> bool:
    return any(marker in reason for marker in _RETRYABLE)


def _code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def _message(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and response.get("Error", {}).get("Message"):
        return f"{response['Error'].get('Code')}: {response['Error']['Message']}"
    return f"{type(exc).__name__}: {exc}"


def _already_exists(exc: Exception) -> bool:
    message = _message(exc).lower()
    return _code(exc) == "ValidationException" and ("already exists" in message or "must be unique" in message)


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _upload(s3: Any, path: Path, uri: str) -> None:
    bucket, key = _split(uri)
    s3.upload_file(str(path), bucket, key)


def _tag(value: str) -> str:
    """A tag value within SageMaker's alphabet ([\\w\\s.:/=+\\-@], 256 characters)."""
    return "".join(c if c.isalnum() or c in " _.:/=+-@" else "_" for c in value)[:256]


def _links(region: str, name: str) -> dict[str, str]:
    console = f"https://{region}.console.aws.amazon.com"
    return {"job": f"{console}/sagemaker/home?region={region}#/jobs/{name}",
            "logs": f"{console}/cloudwatch/home?region={region}#logStream:group=/aws/sagemaker/TrainingJobs;"
                    f"prefix={name}/;streamFilter=typeLogStreamPrefix"}
