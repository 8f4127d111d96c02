"""The ``bigquery`` task type: registered through the ``plait_task_types`` hook."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import threading
from collections.abc import Callable
from typing import Any

from plait import CompileError, PlaitError, Status, TaskType, hookimpl
from plait.sdk import AttemptContext, ErrorKind, Handle, Phase, TaskTemplate
from plait_sql.results import column_type
from plait_sql.task import QueryTask, result_table_name
from plait_sql.template import Parameter, render

from plait_bigquery.config import BigQuery

# BigQuery's error reasons (errorResult.reason) that another attempt may get past.
RETRYABLE = {"backendError", "internalError", "rateLimitExceeded", "quotaExceeded", "jobBackendError",
             "jobInternalError", "tableUnavailable"}
SCRATCH_DATASET = "plait_scratch"
_COLUMNS = {"bool": "BOOL", "int": "INT64", "float": "FLOAT64", "decimal": "NUMERIC", "date": "DATE",
            "timestamp_tz": "TIMESTAMP", "timestamp": "DATETIME", "binary": "BYTES", "string": "STRING"}
_TYPES = {"int": "INT64", "float": "FLOAT64", "str": "STRING", "bool": "BOOL", "date": "DATE",
          "datetime": "DATETIME"}


class BigQueryTask(QueryTask):
    """Runs a query as a BigQuery job whose id is derived from the attempt id."""

    name = "bigquery"
    dialect = "bigquery"
    config_model = BigQuery

    def __init__(self) -> None:
        super().__init__()
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    # -- pools and the client ----------------------------------------------------------------

    def pools_remote(self, task: TaskTemplate, config: Any) -> dict[str, int]:
        project = config.project or os.environ.get("GOOGLE_CLOUD_PROJECT") or "default"
        return {f"bigquery:{project}": 1}

    def client(self, settings: dict[str, Any], secrets: dict[str, str]) -> Any:
        """A client for ``settings`` (project, endpoint, secret name), one per identity."""
        secret = settings.get("credentials_secret")
        key_json = secrets.get(secret) if secret else None
        if secret and key_json is None:
            raise PlaitError(f"BigQuery: the secret {secret!r} named by credentials_secret has no value; set "
                             "PLAIT_SECRET_<NAME> or write it under $PLAIT_HOME/secrets/")
        identity = hashlib.sha256(json.dumps([settings, key_json], sort_keys=True).encode()).hexdigest()
        with self._lock:
            if identity not in self._clients:
                self._clients[identity] = self._new_client(BigQuery(query="", **settings), key_json)
            return self._clients[identity]

    @staticmethod
    def _new_client(config: BigQuery, key_json: str | None) -> Any:
        from google.api_core.client_options import ClientOptions
        from google.cloud import bigquery

        credentials: Any = None
        project = config.project
        if key_json is not None:
            from google.oauth2 import service_account

            try:
                info = json.loads(key_json)
                credentials = service_account.Credentials.from_service_account_info(info)
            except (ValueError, KeyError):
                # never echo the key: it is a credential
                raise PlaitError(f"BigQuery: the secret {config.credentials_secret!r} is not a service-account "
                                 "JSON key") from None
            project = project or info.get("project_id")
        elif config.api_endpoint:
            from google.auth.credentials import AnonymousCredentials

            credentials = AnonymousCredentials()
        else:
            import google.auth
            from google.auth.exceptions import DefaultCredentialsError

            try:
                credentials, default_project = google.auth.default(
                    scopes=["https://www.googleapis.com/auth/cloud-platform"])
            except DefaultCredentialsError:
                raise PlaitError("BigQuery: no Google credentials found. Run `gcloud auth application-default "
                                 "login`, set GOOGLE_APPLICATION_CREDENTIALS, or name a plait secret holding a "
                                 "service-account key with credentials_secret=") from None
            project = project or default_project
        project = project or os.environ.get("GOOGLE_CLOUD_PROJECT")
        if not project:
            raise PlaitError("BigQuery: no project; pass project= or set GOOGLE_CLOUD_PROJECT")
        options = ClientOptions(api_endpoint=config.api_endpoint) if config.api_endpoint else None
        # no default location: each call names the job's own
        return bigquery.Client(project=project, credentials=credentials, client_options=options)

    # -- the hooks ---------------------------------------------------------------------------

    def submit_remote(self, ctx: AttemptContext, task: TaskTemplate, config: BigQuery,
                      kinds: dict[str, str]) -> Handle:
        from google.api_core.exceptions import Conflict, NotFound
        from google.cloud import bigquery

        settings = config.model_dump(include={"project", "api_endpoint", "credentials_secret"})
        client = self.client(settings, ctx.secrets)
        job_id = job_id_for(ctx)
        dataset = config.dataset or SCRATCH_DATASET
        scratch = f"{client.project}.{dataset}._plait_{hashlib.sha256(job_id.encode()).hexdigest()[:16]}"
        rendered = render(task, config.query, ctx.inputs, placeholder=lambda p, i: f"@{p.name}",
                          frame_table=lambda n: f"`{scratch}_{n}`", table_name=lambda t: f"`{t.name}`")
        handle: Handle = {"job_id": job_id, "client": settings, "location": config.location, "outputs": kinds,
                          "loaded": [f"{scratch}_{n}" for n in rendered.frames]}
        if "table" in kinds.values():
            destination = config.destination or f"{dataset}.{result_table_name(ctx, task.name)}"
            parts = destination.split(".")
            handle["destination"] = ".".join([client.project, dataset][: 3 - len(parts)] + parts)
        try:
            job = client.get_job(job_id, location=config.location)
            handle["location"] = job.location or config.location
            return handle  # submitted before the engine restarted: attach to that job
        except NotFound:
            pass
        for name, table in zip(rendered.frames, handle["loaded"], strict=True):
            self._load(client, ctx, table, ctx.inputs[name]["uri"], config)
        job_config = bigquery.QueryJobConfig(
            # an input used twice is one named parameter
            query_parameters=[_parameter(p) for p in {p.name: p for p in rendered.parameters}.values()],
            labels={**config.labels, "plait-execution": _label(ctx.execution_id), "plait-node": _label(ctx.node_id)},
            maximum_bytes_billed=config.maximum_bytes_billed)
        if config.dataset:
            job_config.default_dataset = f"{client.project}.{config.dataset}"
        sql = rendered.sql
        if "destination" in handle:
            # DDL rather than QueryJobConfig.destination: the same statement works on BigQuery and
            # on its emulators, which ignore a job's destination.
            client.create_dataset(handle["destination"].rsplit(".", 1)[0], exists_ok=True)
            sql = f"CREATE OR REPLACE TABLE `{handle['destination']}` AS\n{sql}"
        try:
            job = client.query(sql, job_config=job_config, job_id=job_id, location=config.location, job_retry=None)
        except Conflict:
            return handle  # another submit of this attempt got there first: it is the same job
        # Without a location BigQuery picks the job's region from its tables; a regional job is
        # found again only with it.
        handle["location"] = job.location or config.location
        return handle

    @staticmethod
    def _load(client: Any, ctx: AttemptContext, table: str, uri: str, config: BigQuery) -> None:
        """Load a data-frame input (Parquet) into ``table`` for the query to read."""
        import pyarrow.parquet as pq
        from google.cloud import bigquery

        data = ctx.blobs.read_bytes(uri)
        schema = [bigquery.SchemaField(f.name, column_type(f.type, _COLUMNS)) for f in pq.read_schema(io.BytesIO(data))
                  if f.name != "__index_level_0__"]
        client.create_dataset(table.rsplit(".", 1)[0], exists_ok=True)
        job = client.load_table_from_file(
            io.BytesIO(data), table, location=config.location,
            job_config=bigquery.LoadJobConfig(source_format="PARQUET", schema=schema,
                                              write_disposition="WRITE_TRUNCATE"))
        job.result()

    def poll_remote(self, ctx: AttemptContext, handle: Handle) -> Status:
        from google.api_core.exceptions import NotFound

        client = self._client_for(ctx, handle)
        try:
            job = client.get_job(handle["job_id"], location=handle["location"])
        except NotFound:
            return Status.failed(f"BigQuery job {handle['job_id']} no longer exists", error_kind=ErrorKind.SYSTEM)
        if job.state == "PENDING":
            return Status(Phase.QUEUED, f"job {job.job_id} is pending")
        if job.state != "DONE":
            return Status(Phase.RUNNING, f"job {job.job_id} is running")
        error = job.error_result
        if error:
            reason = error.get("reason", "")
            if reason == "stopped":
                return Status(Phase.ABORTED, f"job {job.job_id} was cancelled")
            message = f"BigQuery job {job.job_id} failed ({reason}): {error.get('message', '')}"
            if reason in RETRYABLE:
                return Status.failed(message, error_kind=ErrorKind.SYSTEM)
            return Status.failed(message, retryable=False)
        if "table" in handle["outputs"].values():
            return self.finish(ctx, handle, None, {"name": handle["destination"], "connection": "bigquery"})
        result = None
        if handle["outputs"]:
            result = job.to_arrow(create_bqstorage_client=False)
        return self.finish(ctx, handle, result, None)

    def abort_remote(self, ctx: AttemptContext, handle: Handle) -> None:
        from google.api_core.exceptions import NotFound

        try:
            self._client_for(ctx, handle).cancel_job(handle["job_id"], location=handle["location"])
        except NotFound:
            pass

    def cleanup_remote(self, ctx: AttemptContext, handle: Handle) -> None:
        client = self._client_for(ctx, handle)
        for table in handle.get("loaded", []):
            client.delete_table(table, not_found_ok=True)

    def check_remote(self, task: TaskTemplate, config: Any) -> None:
        if config.credentials_secret and config.credentials_secret not in task.secrets:
            raise CompileError(f"bigquery task {task.name!r}: credentials_secret {config.credentials_secret!r} is "
                               f"not among the task's secrets; add secrets=[{config.credentials_secret!r}]")

    def close(self) -> None:
        super().close()
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def _client_for(self, ctx: AttemptContext, handle: Handle) -> Any:
        return self.client(handle["client"], ctx.secrets)


def job_id_for(ctx: AttemptContext) -> str:
    """The job id of an attempt: the same after an engine restart, unique per attempt."""
    return "plait_" + re.sub(r"[^A-Za-z0-9_-]", "_", ctx.external_name(200))


def _label(value: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "-", value.lower())[:63]


def _parameter(p: Parameter) -> Any:
    from google.cloud import bigquery

    return bigquery.ScalarQueryParameter(p.name, _TYPES[p.kind], p.value)


@hookimpl
def plait_task_types(register: Callable[[TaskType], None]) -> None:
    register(BigQueryTask())
