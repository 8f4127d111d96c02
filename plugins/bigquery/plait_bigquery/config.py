"""Configuration of a BigQuery query task."""

from __future__ import annotations

from plait_sql.task import QueryConfig


class BigQuery(QueryConfig):
    """Run ``query`` (GoogleSQL) as a BigQuery job.

    ``project`` defaults to the credentials' project (or ``GOOGLE_CLOUD_PROJECT``);
    ``dataset`` holds the tables loaded from data-frame inputs and the default ``Table``
    output. Credentials are Google's application default credentials, or the plait secret
    named by ``credentials_secret`` (a service-account JSON key). ``api_endpoint`` points the
    client at another endpoint (an emulator, reached without credentials).
    """

    task_type = "bigquery"

    project: str | None = None
    location: str | None = None
    dataset: str | None = None
    api_endpoint: str | None = None
    credentials_secret: str | None = None
    labels: dict[str, str] = {}
    maximum_bytes_billed: int | None = None
