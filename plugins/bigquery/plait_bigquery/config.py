"""Configuration of a BigQuery query task."""

from __future__ import annotations

import re

from plait_sql.task import QueryConfig
from pydantic import field_validator

_PROJECT = re.compile(r"^[a-z0-9.:-]+$")
_DATASET = re.compile(r"^[A-Za-z0-9_]+$")


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

    @field_validator("project")
    @classmethod
    def _project(cls, project: str | None) -> str | None:
        if project is not None and not _PROJECT.match(project):
            raise ValueError(f"{project!r} is not a Google Cloud project id")
        return project

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, dataset: str | None) -> str | None:
        if dataset is not None and not _DATASET.match(dataset):
            raise ValueError(f"{dataset!r} is not a BigQuery dataset name (letters, digits and _)")
        return dataset
