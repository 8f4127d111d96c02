"""plait-bigquery against the real client: bqemulator for queries and tables, the slowjobs stub
where a job must stay running or be cancelled, and local mode on DuckDB."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from pathlib import Path

import plait
import pytest
from bqflows import flows, upto
from plait import Phase
from plait.engine.execution import RunOptions, build_engine
from plait.model.status import ErrorKind
from plait.service.run import encode_inputs
from plait.testing.lifecycle import (
    LifecycleCase,
    TaskTypeLifecycleTests,
    make_context,
    poll_until_done,
)
from plait.types.engine import engine as type_engine
from plait_bigquery import bigquery_task
from plait_bigquery.hooks import BigQueryTask, job_id_for

SLOW_SQL = "SELECT COUNT(*) AS n FROM UNNEST(GENERATE_ARRAY(1, 10)) AS x"


def _quick_and_slow(quick_connection: dict, slow_connection: dict):
    quick = bigquery_task("add", "SELECT {{inputs.a}} + {{inputs.b}} AS total", inputs={"a": int, "b": int},
                          outputs={"total": int}, **quick_connection)
    slow = bigquery_task("slow", SLOW_SQL, outputs={"n": int}, **slow_connection)
    return quick.template, slow.template


class TestBigQueryLifecycle(TaskTypeLifecycleTests):
    """Quick jobs on bqemulator; slow ones through the stub, which keeps them running until cancelled."""

    @pytest.fixture(autouse=True)
    def _stand_ins(self, bq_emulator, slow_bq):
        self.emulator, self.stub = bq_emulator, slow_bq
        slow_bq.set_running_polls(100_000)

    def case(self, tmp_path: Path) -> LifecycleCase:
        type_engine()
        project = self.emulator.project
        quick, slow = _quick_and_slow({"api_endpoint": self.emulator.endpoint, "project": project},
                                      {"api_endpoint": self.stub.endpoint, "project": project})
        return LifecycleCase(new_task_type=BigQueryTask, quick=quick, quick_inputs={"a": 2, "b": 3},
                             expected_outputs={"total": 5}, slow=slow, slow_inputs={},
                             starts=lambda: len(self.stub.calls_of("jobs.insert")), timeout=30)


class TestBigQueryLocalLifecycle(TaskTypeLifecycleTests):
    """Local mode: DuckDB in the engine's process; its queries end with the engine."""

    def case(self, tmp_path: Path) -> LifecycleCase:
        type_engine()
        quick = bigquery_task("add", "SELECT {{inputs.a}} + {{inputs.b}} AS total", inputs={"a": int, "b": int},
                              outputs={"total": int}, connection="local").template
        slow = bigquery_task("slow", ("SELECT SUM(a * b * c) % 7 AS n FROM UNNEST(GENERATE_ARRAY(1, 3000)) AS a, "
                              "UNNEST(GENERATE_ARRAY(1, 3000)) AS b, UNNEST(GENERATE_ARRAY(1, 3000)) AS c"),
                             outputs={"n": int}, connection="local").template
        opened: list[BigQueryTask] = []

        def new() -> BigQueryTask:
            opened.append(BigQueryTask())
            return opened[-1]

        return LifecycleCase(new_task_type=new, quick=quick, quick_inputs={"a": 2, "b": 3},
                             expected_outputs={"total": 5}, slow=slow, slow_inputs={},
                             starts=lambda: sum(len(t.warehouse().jobs()) for t in opened if t._warehouse),
                             attaches_after_restart=False, timeout=30)


# -- workflows on the emulator --------------------------------------------------------------------


@pytest.fixture
def on_emulator(bq_emulator):
    return flows(api_endpoint=bq_emulator.endpoint, project=bq_emulator.project, dataset="plait_tests")


def test_a_frame_is_loaded_queried_with_a_date_parameter_and_its_table_dropped_after(on_emulator, bq_emulator):
    execution = plait.run(on_emulator.summary, {"n": 9, "since": dt.date(2026, 1, 4)})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    # days 4..9 hold amounts 3..8: eu 3+6, us 4+7, ap 5+8
    assert execution.outputs["text"] == "ap=13,eu=9,us=11"
    assert execution.outputs["rows"] == 9 and execution.outputs["mean"] == pytest.approx(4.0)
    client = bq_emulator.client()
    left = [t.table_id for t in client.list_tables("plait_tests") if t.table_id.startswith("_plait_")]
    assert left == [], f"loaded input tables were not dropped: {left}"


def test_a_table_output_is_a_reference_the_next_query_reads(on_emulator, bq_emulator):
    execution = plait.run(on_emulator.count_region, {"n": 7, "region": "eu"})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"o0": 3}  # rows 0, 3, 6
    table = execution.result.state.nodes["keep"].outputs["table"]
    assert table["connection"] == "bigquery" and table["name"].startswith(f"{bq_emulator.project}.plait_tests.keep_")
    assert bq_emulator.client().get_table(table["name"]).num_rows == 7


def test_a_value_is_bound_as_a_parameter_never_spliced_into_the_sql(on_emulator, bq_emulator):
    evil = "eu' OR '1'='1"
    execution = plait.run(on_emulator.count_region, {"n": 7, "region": evil})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"o0": 0}, "the injected OR matched rows: the value became SQL"
    attempt = execution.result.state.nodes["matching"].attempts[-1]
    job = bq_emulator.client().get_job(job_id_for_attempt(attempt))
    assert "@region" in job.query and evil not in job.query


def job_id_for_attempt(attempt) -> str:
    return attempt.handle["job_id"]


def test_a_query_error_fails_permanently_with_bigquery_s_reason(bq_emulator, tmp_path):
    type_engine()
    broken = bigquery_task("broken", "SELEC 1 AS x", outputs={"x": int}, api_endpoint=bq_emulator.endpoint,
                           project=bq_emulator.project)
    tt = BigQueryTask()
    ctx = make_context(tmp_path, "errors/1", {})
    status = poll_until_done(tt, ctx, tt.submit(ctx, broken.template), 30)
    assert status.phase == Phase.FAILED and not status.retryable
    assert "invalidQuery" in status.message and "Syntax error" in status.message


@pytest.mark.parametrize("reason", ["backendError", "internalError", "rateLimitExceeded", "quotaExceeded"])
def test_a_service_side_failure_is_a_retryable_system_error(slow_bq, tmp_path, reason):
    type_engine()
    slow_bq.set_running_polls(1)
    slow_bq.fail_with(reason, "try again later")
    task = bigquery_task("q", "SELECT 1 AS x", outputs={"x": int}, api_endpoint=slow_bq.endpoint,
                         project=slow_bq.project if hasattr(slow_bq, "project") else "test-project")
    tt = BigQueryTask()
    ctx = make_context(tmp_path, f"errors/{reason}", {})
    status = poll_until_done(tt, ctx, tt.submit(ctx, task.template), 30)
    assert status.phase == Phase.FAILED and status.retryable and status.error_kind == ErrorKind.SYSTEM
    assert reason in status.message


def test_abort_cancels_the_job_on_bigquery(slow_bq, bq_emulator, tmp_path):
    type_engine()
    slow_bq.set_running_polls(100_000)
    task = bigquery_task("slow", SLOW_SQL, outputs={"n": int}, api_endpoint=slow_bq.endpoint,
                         project=bq_emulator.project)
    tt = BigQueryTask()
    ctx = make_context(tmp_path, "abort/1", {})
    handle = tt.submit(ctx, task.template)
    assert tt.poll(ctx, handle).phase == Phase.RUNNING
    tt.abort(ctx, handle)
    assert poll_until_done(tt, ctx, handle, 30).phase == Phase.ABORTED
    assert [c.job_id for c in slow_bq.calls_of("jobs.cancel")] == [job_id_for(ctx)]


def test_the_pool_is_the_project(bq_emulator):
    type_engine()
    task = bigquery_task("q", "SELECT 1 AS x", outputs={"x": int}, project="acme-analytics")
    tt = BigQueryTask()
    assert tt.pools(task.template, tt.config(task.template)) == {"bigquery:acme-analytics": 1}
    local = bigquery_task("q", "SELECT 1 AS x", outputs={"x": int}, connection="local")
    assert tt.pools(local.template, tt.config(local.template)) == {"bigquery:local": 1}


# -- credentials ---------------------------------------------------------------------------------

SECRET_MARK = "sekret-VALUE-4c1d"


def test_missing_credentials_say_what_to_do(monkeypatch, tmp_path):
    type_engine()
    for var in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_GCE_CHECK", "true")  # no metadata server here: do not wait for one
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    task = bigquery_task("q", "SELECT 1 AS x", outputs={"x": int}, project="p")
    tt = BigQueryTask()
    with pytest.raises(plait.PlaitError, match="application-default login"):
        tt.submit(make_context(tmp_path, "creds/1", {}), task.template)


def test_a_credential_never_appears_in_events_logs_or_errors(monkeypatch, bq_emulator):
    monkeypatch.setenv("PLAIT_SECRET_BQ_KEY", '{"type": "service_account", "private_key": "' + SECRET_MARK + '"}')
    task = bigquery_task("q", "SELECT 1 AS x", outputs={"x": int}, api_endpoint=bq_emulator.endpoint,
                         project=bq_emulator.project, credentials_secret="bq_key")

    @plait.workflow
    def one() -> int:
        return task()

    execution = plait.run(one)
    assert execution.phase == Phase.FAILED
    assert "not a service-account JSON key" in str(execution.error)
    engine = build_engine()
    events = json.dumps([e.data for e in engine.store.events(execution.execution_id)])
    assert SECRET_MARK not in events and SECRET_MARK not in str(execution.error)
    for log in Path(engine.settings.home).rglob("*.log"):
        assert SECRET_MARK not in log.read_text(errors="replace"), log


# -- compile-time checks -------------------------------------------------------------------------


def test_a_placeholder_naming_no_input_is_a_compile_error():
    bad = bigquery_task("bad", "SELECT {{inputs.nope}} AS x", inputs={"a": int}, outputs={"x": int},
                        connection="local")

    @plait.workflow
    def wf(a: int) -> int:
        return bad(a=a)

    with pytest.raises(plait.CompileError, match=r"no input 'nope' \(inputs: a\)"):
        _ = wf.spec


def test_an_output_a_query_cannot_give_is_a_compile_error():
    bad = bigquery_task("bad", "SELECT 1 AS x", outputs={"x": list[int], "y": int}, connection="local")

    @plait.workflow
    def wf() -> int:
        return bad().y

    with pytest.raises(plait.CompileError, match="cannot come from a query"):
        _ = wf.spec


def test_local_mode_rejects_sql_it_cannot_parse_at_compile_time():
    bad = bigquery_task("bad", "SELECT FROM WHERE (", outputs={"x": int}, connection="local")

    @plait.workflow
    def wf() -> int:
        return bad()

    with pytest.raises(plait.CompileError, match="not valid bigquery SQL"):
        _ = wf.spec


# -- local mode ----------------------------------------------------------------------------------


def test_the_same_workflow_runs_offline_on_duckdb(monkeypatch, bq_emulator):
    monkeypatch.setenv("PLAIT_OFFLINE", "1")
    offline = flows(api_endpoint="http://unreachable.invalid", project="my-project", dataset="sales")
    execution = plait.run(offline.summary, {"n": 9, "since": dt.date(2026, 1, 4)})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"text": "ap=13,eu=9,us=11", "rows": 9, "mean": pytest.approx(4.0)}
    injected = plait.run(offline.count_region, {"n": 7, "region": "eu' OR '1'='1"})
    assert injected.outputs == {"o0": 0}


# -- tenant tokens -------------------------------------------------------------------------------


def test_a_tenant_flooding_the_project_pool_does_not_starve_another(monkeypatch, slow_bq, bq_emulator):
    monkeypatch.setenv("PLAIT_POOLS", f"bigquery:{bq_emulator.project}=2")
    slow_bq.set_running_polls(3)
    query = bigquery_task("q", "SELECT {{inputs.i}} AS i", inputs={"i": int}, outputs={"i": int},
                          api_endpoint=slow_bq.endpoint, project=bq_emulator.project)

    @plait.workflow
    def many(n: int) -> list[int]:
        return plait.map(query, over=upto(n=n))

    engine = build_engine()

    async def both():
        loud = asyncio.create_task(engine.run(many.spec, encode_inputs(many, {"n": 24}, engine),
                                              RunOptions(project="loud", domain="prod", max_poll_interval=0.2)))
        while not slow_bq.calls_of("jobs.insert"):
            await asyncio.sleep(0.02)
        quiet = await engine.run(many.spec, encode_inputs(many, {"n": 2}, engine),
                                 RunOptions(project="quiet", domain="prod", max_poll_interval=0.2))
        return await loud, quiet, time.time()

    try:
        loud, quiet, quiet_done = asyncio.run(both())
    finally:
        engine.close()
    assert loud.phase == quiet.phase == Phase.SUCCEEDED
    loud_ends = sorted(e.ts for e in build_engine().store.events(loud.execution_id)
                       if e.kind == "item" and e.phase == "succeeded")
    quiet_end = max(e.ts for e in build_engine().store.events(quiet.execution_id) if e.phase == "succeeded")
    assert quiet_end < loud_ends[len(loud_ends) // 2], "the quiet tenant waited behind the flood"


def test_an_input_used_twice_is_sent_as_one_named_parameter(slow_bq, bq_emulator, tmp_path):
    type_engine()
    slow_bq.set_running_polls(0)
    task = bigquery_task("twice", "SELECT {{inputs.a}} + {{inputs.a}} AS total", inputs={"a": int},
                         outputs={"total": int}, api_endpoint=slow_bq.endpoint, project=bq_emulator.project)
    tt = BigQueryTask()
    ctx = make_context(tmp_path, "twice/1", {"a": 4})
    status = poll_until_done(tt, ctx, tt.submit(ctx, task.template), 30)
    assert status.outputs == {"total": 8}, status.message
    (insert,) = slow_bq.calls_of("jobs.insert")
    sent = insert.body["configuration"]["query"]["queryParameters"]
    assert [p["name"] for p in sent] == ["a"]


def test_a_credentials_secret_the_task_does_not_declare_is_a_compile_error():
    from plait import external_task
    from plait_bigquery import BigQuery

    task = external_task("q", BigQuery(query="SELECT 1 AS x", project="p", credentials_secret="bq_key"),
                         outputs={"x": int})

    @plait.workflow
    def wf() -> int:
        return task()

    with pytest.raises(plait.CompileError, match=r"credentials_secret 'bq_key' is not among the task's secrets"):
        _ = wf.spec


# -- job options ---------------------------------------------------------------------------------


def test_location_labels_maximum_bytes_billed_and_dataset_reach_the_job(slow_bq, bq_emulator, tmp_path):
    type_engine()
    slow_bq.set_running_polls(0)
    task = bigquery_task("opts", "SELECT 1 AS x", outputs={"x": int}, api_endpoint=slow_bq.endpoint,
                         project=bq_emulator.project, location="EU", dataset="plait_opts",
                         labels={"team": "data"}, maximum_bytes_billed=10_000_000)
    tt = BigQueryTask()
    ctx = make_context(tmp_path, "opts/1", {})
    status = poll_until_done(tt, ctx, tt.submit(ctx, task.template), 30)
    assert status.phase == Phase.SUCCEEDED, status.message
    (insert,) = slow_bq.calls_of("jobs.insert")
    assert insert.body["jobReference"]["location"] == "EU"
    config = insert.body["configuration"]
    assert config["labels"]["team"] == "data" and "plait-execution" in config["labels"]
    assert int(config["query"]["maximumBytesBilled"]) == 10_000_000
    assert config["query"]["defaultDataset"] == {"projectId": bq_emulator.project, "datasetId": "plait_opts"}
    polls = slow_bq.calls_of("jobs.get", insert.job_id)
    assert polls and all(p.params.get("location") == ["EU"] for p in polls), "the job is polled in its location"


def test_without_a_dataset_loaded_inputs_and_derived_tables_go_to_plait_scratch(slow_bq, bq_emulator):
    slow_bq.set_running_polls(0)
    scratch = f"{bq_emulator.project}.plait_scratch"
    no_dataset = flows(api_endpoint=slow_bq.endpoint, project=bq_emulator.project)
    execution = plait.run(no_dataset.count_region, {"n": 7, "region": "eu"})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"o0": 3}
    table = execution.result.state.nodes["keep"].outputs["table"]["name"]
    assert table.startswith(f"{scratch}.keep_")
    keep_sql = next(c.body["configuration"]["query"]["query"] for c in slow_bq.calls_of("jobs.insert")
                    if "CREATE OR REPLACE TABLE" in c.body["configuration"]["query"]["query"])
    assert f"CREATE OR REPLACE TABLE `{table}`" in keep_sql
    assert f"FROM `{scratch}._plait_" in keep_sql, keep_sql
    assert bq_emulator.client().get_table(table).num_rows == 7
