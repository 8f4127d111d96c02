"""Prove the BigQuery stand-ins (bqemulator + the slowjobs stub) work with the real client."""

import datetime as dt
import io
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.api_core import exceptions
from google.cloud import bigquery
from google.cloud.bigquery import ArrayQueryParameter, QueryJobConfig, ScalarQueryParameter


def _uid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def test_parameterised_query_with_job_id(bq_emulator):
    client = bq_emulator.client()
    job_id = _uid("job")
    config = QueryJobConfig(
        query_parameters=[
            ScalarQueryParameter("i", "INT64", 5),
            ScalarQueryParameter("f", "FLOAT64", 1.5),
            ScalarQueryParameter("s", "STRING", "hé"),
            ScalarQueryParameter("b", "BOOL", True),
            ScalarQueryParameter("d", "DATE", dt.date(2024, 1, 2)),
            ScalarQueryParameter("ts", "TIMESTAMP", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)),
            ArrayQueryParameter("arr", "INT64", [3, 1, 2]),
        ],
        labels={"flow": "f1"},
    )
    job = client.query(
        "SELECT @i + 1 AS i, @f AS f, @s AS s, @b AS b, @d AS d, @ts AS ts, x "
        "FROM UNNEST(@arr) AS x ORDER BY x",
        job_config=config,
        job_id=job_id,
        job_retry=None,
    )
    assert job.job_id == job_id
    rows = [dict(r) for r in job.result()]
    assert job.state == "DONE" and job.error_result is None
    assert [r["x"] for r in rows] == [1, 2, 3]
    assert rows[0] | {"x": None} == {
        "i": 6, "f": 1.5, "s": "hé", "b": True, "d": dt.date(2024, 1, 2),
        "ts": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "x": None,
    }
    table = job.to_arrow(create_bqstorage_client=False)
    assert table.column("x").to_pylist() == [1, 2, 3]


def test_get_job_by_id_from_a_fresh_client(bq_emulator):
    job_id = _uid("attach")
    bq_emulator.client().query("SELECT 42 AS answer", job_id=job_id, job_retry=None).result()

    again = bq_emulator.client().get_job(job_id)
    assert isinstance(again, bigquery.QueryJob)
    assert (again.job_id, again.state, again.error_result) == (job_id, "DONE", None)
    assert [dict(r) for r in again.result()] == [{"answer": 42}]
    with pytest.raises(exceptions.NotFound):
        bq_emulator.client().get_job(_uid("missing"))


def test_query_errors(bq_emulator):
    client = bq_emulator.client()
    bad = client.query("SELEC 1", job_retry=None)
    with pytest.raises(exceptions.BadRequest):
        bad.result()
    assert bad.state == "DONE" and bad.error_result["reason"] == "invalidQuery"

    missing = client.query(f"SELECT * FROM `{bq_emulator.project}.nope.nope`", job_retry=None)
    with pytest.raises(exceptions.NotFound):
        missing.result()
    assert missing.error_result["reason"] == "notFound"


def test_tables_created_loaded_and_deleted(bq_emulator):
    client = bq_emulator.client()
    dataset = client.create_dataset(_uid("ds"), exists_ok=True)
    ds = f"{bq_emulator.project}.{dataset.dataset_id}"

    client.query(f"CREATE OR REPLACE TABLE `{ds}.ctas` AS SELECT 1 AS a UNION ALL SELECT 2").result()
    assert client.get_table(f"{ds}.ctas").num_rows == 2

    frame = pa.table({"a": [1, 2], "b": ["x", "y"]})
    buf = io.BytesIO()
    pq.write_table(frame, buf)
    buf.seek(0)
    load = client.load_table_from_file(
        buf,
        f"{ds}.loaded",
        job_config=bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            schema=[bigquery.SchemaField("a", "INT64"), bigquery.SchemaField("b", "STRING")],
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        ),
    )
    load.result()
    assert load.output_rows == 2
    joined = client.query(
        f"SELECT l.b FROM `{ds}.loaded` l JOIN `{ds}.ctas` c USING (a) ORDER BY l.b"
    ).result()
    assert [r.b for r in joined] == ["x", "y"]

    for table in ("ctas", "loaded"):
        client.delete_table(f"{ds}.{table}")
        client.delete_table(f"{ds}.{table}", not_found_ok=True)
        with pytest.raises(exceptions.NotFound):
            client.get_table(f"{ds}.{table}")
    client.delete_dataset(ds, delete_contents=True, not_found_ok=True)


def test_load_table_from_dataframe_needs_multipart_fix(bq_emulator, bq_multipart_uploads):
    import pandas as pd
    client = bq_emulator.client()
    ds = client.create_dataset(_uid("ds")).dataset_id
    df = pd.DataFrame({"a": [1, 2], "b": ["x", None]})
    job = client.load_table_from_dataframe(df, f"{bq_emulator.project}.{ds}.frame")
    job.result()
    got = client.query(f"SELECT a, b FROM `{ds}.frame` ORDER BY a").to_arrow(create_bqstorage_client=False)
    assert got.to_pydict() == {"a": [1, 2], "b": ["x", None]}


def test_slow_job_runs_for_polls_then_returns_rows(slow_bq):
    slow_bq.set_running_polls(2)
    client = slow_bq.client()
    job_id = _uid("slow")
    job = client.query(
        "SELECT @x * 2 AS y",
        job_config=QueryJobConfig(query_parameters=[ScalarQueryParameter("x", "INT64", 21)]),
        job_id=job_id,
        job_retry=None,
    )
    assert job.state == "PENDING"
    assert job.done() is False and job.state == "RUNNING"
    attached = slow_bq.client().get_job(job_id)  # attach by id (one more poll)
    assert attached.state == "RUNNING"
    assert attached.done() is True and attached.state == "DONE"
    assert [dict(r) for r in job.result()] == [{"y": 42}]
    assert len(slow_bq.calls_of("jobs.insert", job_id)) == 1

    with pytest.raises(exceptions.Conflict):
        client.query("SELECT 1", job_id=job_id, job_retry=None)


def test_slow_job_cancel(slow_bq):
    slow_bq.set_running_polls(100)
    client = slow_bq.client()
    job = client.query("SELECT 1", job_id=_uid("cancel"), job_retry=None)
    assert job.done() is False
    assert client.cancel_job(job.job_id).state == "RUNNING"
    assert job.done() is True
    assert job.error_result["reason"] == "stopped"
    assert job.cancelled()
    with pytest.raises(exceptions.GoogleAPICallError):
        job.result()
    assert len(slow_bq.calls_of("jobs.cancel", job.job_id)) == 1
    assert len(slow_bq.calls_of("jobs.insert")) == 1


def test_slow_job_injected_failure(slow_bq):
    slow_bq.set_running_polls(1)
    slow_bq.fail_with("rateLimitExceeded", "Exceeded rate limits")
    job = slow_bq.client().query("SELECT 1", job_retry=None)
    with pytest.raises(exceptions.TooManyRequests):
        job.result()
    assert job.error_result == {"reason": "rateLimitExceeded", "message": "Exceeded rate limits"}
