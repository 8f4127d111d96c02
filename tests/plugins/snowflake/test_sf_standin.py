"""The fake Snowflake (fakesnow + fakesnow_plus) works with the real snowflake-connector-python."""

import time
import uuid

import pytest
import snowflake.connector
from snowflake.connector import ProgrammingError
from snowflake.connector.constants import QueryStatus


@pytest.fixture
def conn(fakesnow_server):
    with snowflake.connector.connect(paramstyle="qmark", **fakesnow_server) as c:
        yield c


def _wait_for(conn, sfqid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while conn.is_still_running(status := conn.get_query_status(sfqid)):
        assert time.monotonic() < deadline, f"{sfqid} still {status}"
        time.sleep(0.05)
    return status


def test_bound_parameters(conn, fakesnow_server):
    cur = conn.cursor()
    cur.execute("CREATE TABLE bound_t (id NUMBER, name VARCHAR)")
    cur.executemany("INSERT INTO bound_t VALUES (?, ?)", [(1, "a"), (2, "b"), (3, "c")])
    assert cur.rowcount == 3
    assert cur.execute("SELECT name FROM bound_t WHERE id >= ? ORDER BY id", (2,)).fetchall() == [
        ("b",),
        ("c",),
    ]
    with snowflake.connector.connect(paramstyle="numeric", **fakesnow_server) as numeric:
        assert numeric.cursor().execute("SELECT :1 + 1, :2, :1", (41, "x")).fetchall() == [
            (42, "x", 41)
        ]
    df = cur.execute("SELECT * FROM bound_t ORDER BY id").fetch_pandas_all()
    assert list(df.columns) == ["ID", "NAME"] and df["ID"].tolist() == [1, 2, 3]


def test_async_execute_status_and_results(conn):
    cur = conn.cursor()
    cur.execute_async("SELECT SYSTEM$WAIT(300, 'MILLISECONDS')")
    waiting = cur.sfqid
    cur.execute_async("SELECT 42 AS answer")
    quick = cur.sfqid
    assert conn.get_query_status(waiting) == QueryStatus.RUNNING
    assert _wait_for(conn, quick) == QueryStatus.SUCCESS
    assert conn.get_query_status_throw_if_error(quick) == QueryStatus.SUCCESS
    results = conn.cursor()
    results.get_results_from_sfqid(quick)
    assert results.fetchall() == [(42,)]
    assert _wait_for(conn, waiting) == QueryStatus.SUCCESS
    results.get_results_from_sfqid(waiting)
    assert results.fetchall() == [("waited 300 milliseconds",)]


def test_async_error_shows_in_status(conn):
    cur = conn.cursor()
    cur.execute_async("SELECT * FROM no_such_table")
    assert _wait_for(conn, cur.sfqid) == QueryStatus.FAILED_WITH_ERROR
    with pytest.raises(ProgrammingError) as e:
        conn.get_query_status_throw_if_error(cur.sfqid)
    assert e.value.errno == 2003 and "NO_SUCH_TABLE" in e.value.msg


@pytest.mark.parametrize("how", ["abort_query", "system_cancel_query"])
def test_abort_running_query(conn, how):
    cur = conn.cursor()
    cur.execute_async("SELECT SYSTEM$WAIT(30)")
    sfqid = cur.sfqid
    time.sleep(0.2)
    assert conn.get_query_status(sfqid) == QueryStatus.RUNNING
    if how == "abort_query":
        assert conn.cursor().abort_query(sfqid) is True
    else:
        row = conn.cursor().execute("SELECT SYSTEM$CANCEL_QUERY(?)", (sfqid,)).fetchone()
        assert row == (f"query [{sfqid}] terminated.",)
    assert _wait_for(conn, sfqid, timeout=2) == QueryStatus.FAILED_WITH_ERROR
    with pytest.raises(ProgrammingError) as e:
        conn.get_query_status_throw_if_error(sfqid)
    assert e.value.errno == 604
    assert conn.cursor().abort_query(sfqid) is False  # no longer running


def test_timeout_cancels_sync_query(conn):
    start = time.monotonic()
    with pytest.raises(ProgrammingError) as e:
        conn.cursor().execute("SELECT SYSTEM$WAIT(30)", timeout=1)
    assert e.value.errno == 604 and time.monotonic() - start < 10


def test_query_tag_and_history(conn):
    tag = f"standin-{uuid.uuid4()}"
    cur = conn.cursor()
    cur.execute(f"ALTER SESSION SET QUERY_TAG = '{tag}'")
    cur.execute_async("SELECT SYSTEM$WAIT(30)")
    sfqid = cur.sfqid
    rows = cur.execute(
        "SELECT query_id, execution_status FROM TABLE(INFORMATION_SCHEMA.QUERY_HISTORY_BY_SESSION()) "
        "WHERE query_tag = ? AND query_text = 'SELECT SYSTEM$WAIT(30)'",
        (tag,),
    ).fetchall()
    assert rows == [(sfqid, "RUNNING")]
    cur.execute(f"SELECT SYSTEM$CANCEL_QUERY('{sfqid}')")


def test_errors(conn):
    cur = conn.cursor()
    with pytest.raises(ProgrammingError) as e:
        cur.execute("SELEC 1")
    assert (e.value.errno, e.value.sqlstate) == (1003, "42000")
    with pytest.raises(ProgrammingError) as e:
        cur.execute("SELECT * FROM missing_table")
    assert (e.value.errno, e.value.sqlstate) == (2003, "42S02")
