"""plait-snowflake against the real connector and fakesnow (with the routes fakesnow_plus.py
adds), and local mode on DuckDB."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import time
from pathlib import Path

import plait
import pytest
import snowflake.connector
from plait import Phase
from plait.engine.execution import RunOptions, build_engine
from plait.service.run import encode_inputs
from plait.testing.lifecycle import (
    LifecycleCase,
    TaskTypeLifecycleTests,
    make_context,
    poll_until_done,
)
from plait.types.engine import engine as type_engine
from plait_snowflake import snowflake_task
from plait_snowflake.hooks import SnowflakeTask
from sfflows import flows, upto

PASSWORD = "pw-MARK-7f3e9a"
_waits = itertools.count(60)


@pytest.fixture
def remote(fakesnow_server, monkeypatch):
    """Connection options for a task, with the password as a plait secret."""
    monkeypatch.setenv("PLAIT_SECRET_SF_PASSWORD", PASSWORD)
    p = fakesnow_server
    return {"account": p["account"], "user": p["user"], "password_secret": "sf_password", "host": p["host"],
            "port": p["port"], "protocol": p["protocol"], "database": p["database"], "schema": p["schema"]}


def connect(fakesnow_server):
    return snowflake.connector.connect(**fakesnow_server, paramstyle="qmark")


def started(fakesnow_server, text: str) -> int:
    with connect(fakesnow_server) as conn:
        rows = conn.cursor().execute(
            "SELECT query_id FROM TABLE(INFORMATION_SCHEMA.QUERY_HISTORY()) WHERE query_text = ?", (text,)).fetchall()
    return len(rows)


class TestSnowflakeLifecycle(TaskTypeLifecycleTests):
    @pytest.fixture(autouse=True)
    def _server(self, fakesnow_server, remote):
        self.server, self.remote = fakesnow_server, remote
        # the stand-in runs only a bare SYSTEM$WAIT slowly; a distinct length tells tests apart
        self.slow_sql = f"SELECT SYSTEM$WAIT({next(_waits)})"

    def case(self, tmp_path: Path) -> LifecycleCase:
        type_engine()
        quick = snowflake_task("add", "SELECT {{inputs.a}} + {{inputs.b}} AS total", inputs={"a": int, "b": int},
                               outputs={"total": int}, **self.remote)
        slow = snowflake_task("slow", self.slow_sql, **self.remote)
        return LifecycleCase(new_task_type=SnowflakeTask, quick=quick.template, quick_inputs={"a": 2, "b": 3},
                             expected_outputs={"total": 5}, slow=slow.template, slow_inputs={},
                             starts=lambda: started(self.server, self.slow_sql), timeout=30,
                             secrets={"sf_password": PASSWORD})


class TestSnowflakeLocalLifecycle(TaskTypeLifecycleTests):
    def case(self, tmp_path: Path) -> LifecycleCase:
        type_engine()
        quick = snowflake_task("add", "SELECT {{inputs.a}} + {{inputs.b}} AS total", inputs={"a": int, "b": int},
                               outputs={"total": int}, connection="local")
        slow = snowflake_task("slow", "SELECT COUNT(*) AS n FROM TABLE(GENERATOR(ROWCOUNT => 100000000000))",
                              outputs={"n": int}, connection="local")
        opened: list[SnowflakeTask] = []

        def new() -> SnowflakeTask:
            opened.append(SnowflakeTask())
            return opened[-1]

        return LifecycleCase(new_task_type=new, quick=quick.template, quick_inputs={"a": 2, "b": 3},
                             expected_outputs={"total": 5}, slow=slow.template, slow_inputs={},
                             starts=lambda: sum(len(t.warehouse().jobs()) for t in opened if t._warehouse),
                             attaches_after_restart=False, timeout=30)


def test_a_frame_is_loaded_queried_with_a_date_parameter_and_its_table_dropped_after(remote, fakesnow_server):
    execution = plait.run(flows(**remote).summary, {"n": 9, "since": dt.date(2026, 1, 4)})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"text": "ap=13,eu=9,us=11", "rows": 9, "mean": pytest.approx(4.0)}
    with connect(fakesnow_server) as conn:
        left = conn.cursor().execute("SELECT table_name FROM INFORMATION_SCHEMA.TABLES "
                                     "WHERE table_name LIKE 'PLAIT_IN_%'").fetchall()
    assert left == [], f"loaded input tables were not dropped: {left}"


def test_a_table_output_is_a_reference_the_next_query_reads(remote, fakesnow_server):
    execution = plait.run(flows(**remote).count_region, {"n": 7, "region": "eu"})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"o0": 3}
    table = execution.result.state.nodes["keep"].outputs["table"]
    assert table["connection"] == "snowflake" and table["name"].startswith("KEEP_")
    with connect(fakesnow_server) as conn:
        assert conn.cursor().execute(f"SELECT COUNT(*) FROM {table['name']}").fetchone() == (7,)


def test_a_value_is_bound_as_a_parameter_never_spliced_into_the_sql(remote, fakesnow_server):
    evil = "eu' OR '1'='1"
    execution = plait.run(flows(**remote).count_region, {"n": 7, "region": evil})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"o0": 0}, "the injected OR matched rows: the value became SQL"
    with connect(fakesnow_server) as conn:
        texts = [r[0] for r in conn.cursor().execute(
            "SELECT query_text FROM TABLE(INFORMATION_SCHEMA.QUERY_HISTORY()) WHERE query_text LIKE '%region = ?%'")]
    assert texts and all(evil not in t for t in texts)


def test_a_query_error_fails_permanently_with_snowflake_s_error_number(remote, tmp_path):
    type_engine()
    broken = snowflake_task("broken", "SELECT * FROM NO_SUCH_TABLE", outputs={"x": int}, **remote)
    tt = SnowflakeTask()
    ctx = make_context(tmp_path, "errors/1", {})
    ctx.secrets = {"sf_password": PASSWORD}
    status = poll_until_done(tt, ctx, tt.submit(ctx, broken.template), 30)
    tt.close()
    assert status.phase == Phase.FAILED and not status.retryable
    assert "Snowflake error 2003" in status.message and "NO_SUCH_TABLE" in status.message.upper()


def test_an_internal_error_is_a_retryable_system_failure(remote, tmp_path):
    from plait.model.status import ErrorKind

    errno = 603  # fakesnow_plus fails the statement with it
    type_engine()
    internal = snowflake_task("internal", f"SELECT SYSTEM$PLAIT_FAIL({errno}, 'SQL execution internal error')",
                              outputs={"x": int}, **remote)
    tt = SnowflakeTask()
    ctx = make_context(tmp_path, "errors/603", {})
    ctx.secrets = {"sf_password": PASSWORD}
    status = poll_until_done(tt, ctx, tt.submit(ctx, internal.template), 30)
    tt.close()
    assert status.phase == Phase.FAILED and status.retryable and status.error_kind == ErrorKind.SYSTEM
    assert f"Snowflake error {errno}" in status.message and "internal error" in status.message


def test_the_pool_is_the_account(remote):
    type_engine()
    tt = SnowflakeTask()
    task = snowflake_task("q", "SELECT 1 AS x", outputs={"x": int}, **remote)
    assert tt.pools(task.template, tt.config(task.template)) == {"snowflake:fakesnow": 1}
    local = snowflake_task("q", "SELECT 1 AS x", outputs={"x": int}, connection="local")
    assert tt.pools(local.template, tt.config(local.template)) == {"snowflake:local": 1}


def test_the_password_never_appears_in_events_logs_or_errors(remote):
    broken = snowflake_task("broken", "SELECT * FROM NO_SUCH_TABLE", outputs={"x": int}, **remote)

    @plait.workflow
    def one() -> int:
        return broken()

    execution = plait.run(one)
    assert execution.phase == Phase.FAILED and "2003" in str(execution.error)
    engine = build_engine()
    everything = json.dumps([e.data for e in engine.store.events(execution.execution_id)])
    assert PASSWORD not in everything and PASSWORD not in str(execution.error)
    for path in Path(engine.settings.home).rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_a_missing_password_secret_says_what_to_set(remote, tmp_path):
    type_engine()
    task = snowflake_task("q", "SELECT 1 AS x", outputs={"x": int}, **remote)
    tt = SnowflakeTask()
    with pytest.raises(plait.PlaitError, match="secret 'sf_password'.*PLAIT_SECRET_"):
        tt.submit(make_context(tmp_path, "creds/1", {}), task.template)


def test_the_same_workflow_runs_offline_on_duckdb(monkeypatch, remote):
    monkeypatch.setenv("PLAIT_OFFLINE", "1")
    offline = flows(**remote)
    execution = plait.run(offline.summary, {"n": 9, "since": dt.date(2026, 1, 4)})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"text": "ap=13,eu=9,us=11", "rows": 9, "mean": pytest.approx(4.0)}
    assert plait.run(offline.count_region, {"n": 7, "region": "eu' OR '1'='1"}).outputs == {"o0": 0}


def test_a_tenant_flooding_the_account_pool_does_not_starve_another(monkeypatch, remote):
    monkeypatch.setenv("PLAIT_POOLS", "snowflake:fakesnow=2")
    # the stand-in runs only a bare SYSTEM$WAIT slowly, so the input is not used
    query = snowflake_task("q", "SELECT SYSTEM$WAIT(300, 'MILLISECONDS') AS waited",
                           inputs={"i": int}, outputs={"waited": str}, **remote)

    @plait.workflow
    def many(n: int) -> list[str]:
        return plait.map(query, over=upto(n=n))

    engine = build_engine()

    async def both():
        loud = asyncio.create_task(engine.run(many.spec, encode_inputs(many, {"n": 16}, engine),
                                              RunOptions(project="loud", domain="prod", max_poll_interval=0.2)))

        def queued() -> int:
            return engine.tokens.snapshot().get("snowflake:fakesnow", {}).get("waiters", {}).get("loud/prod", 0)

        # the whole flood is queued (two run, fourteen wait) before the quiet tenant asks
        deadline = time.monotonic() + 60
        while queued() < 14 and not loud.done():
            assert time.monotonic() < deadline, "the loud tenant's queries never queued for the pool"
            await asyncio.sleep(0.02)
        quiet = await engine.run(many.spec, encode_inputs(many, {"n": 2}, engine),
                                 RunOptions(project="quiet", domain="prod", max_poll_interval=0.2))
        return await loud, quiet

    try:
        loud, quiet = asyncio.run(both())
    finally:
        engine.close()
    assert loud.phase == quiet.phase == Phase.SUCCEEDED, (loud.error, quiet.error)
    store = build_engine().store
    loud_ends = sorted(e.ts for e in store.events(loud.execution_id) if e.kind == "item" and e.phase == "succeeded")
    quiet_end = max(e.ts for e in store.events(quiet.execution_id) if e.phase == "succeeded")
    assert quiet_end < loud_ends[len(loud_ends) // 2], "the quiet tenant waited behind the flood"


DEMO_WORKFLOW = """
import importlib.util, sys
import pandas as pd
import plait

spec = importlib.util.spec_from_file_location("plait_mix_example", {mix!r})
mix = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = mix
spec.loader.exec_module(mix)


@plait.task
def readings(n: int) -> pd.DataFrame:
    return pd.DataFrame({{"x": [i / 100 for i in range(n)], "y": [3.0 * i / 100 + 1 for i in range(n)]}})


@plait.task
def count(buckets: pd.DataFrame) -> int:
    return len(buckets)


@plait.workflow
def demo_query(n: int) -> int:
    return count(buckets=mix.clean(readings=readings(n=n), glitch_above=100.0, min_readings=1))
"""


def test_PLAIT_SNOWFLAKE_CONNECTION_runs_the_demo_query_on_the_named_connection(fakesnow_server, tmp_path):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    p = fakesnow_server
    home = tmp_path / "snowflake-home"
    home.mkdir()
    toml = home / "connections.toml"
    toml.write_text("[plait_demo]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in p.items()))
    toml.chmod(0o600)
    (tmp_path / "demo_query.py").write_text(DEMO_WORKFLOW.format(mix=str(root / "examples" / "mix.py")))
    marker = "ROUND(x, 2) AS bucket"
    before = _history_count(fakesnow_server, marker)
    result = subprocess.run(
        [sys.executable, "-m", "plait.cli", "run", "demo_query.py:demo_query", "--n", "7", "--inline", "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "SNOWFLAKE_HOME": str(home), "PLAIT_SNOWFLAKE_CONNECTION": "plait_demo"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"o0": 7' in result.stdout, result.stdout  # 7 readings, 7 buckets of x
    assert _history_count(fakesnow_server, marker) == before + 1, "the demo query did not run on the connection"


def _history_count(fakesnow_server, text: str) -> int:
    with connect(fakesnow_server) as conn:
        rows = conn.cursor().execute(
            "SELECT query_id FROM TABLE(INFORMATION_SCHEMA.QUERY_HISTORY()) WHERE query_text LIKE ?",
            (f"%{text}%",)).fetchall()
    return len(rows)
