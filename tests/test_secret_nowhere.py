"""A secret given to a task appears nowhere: not under the plait home, not in the store, not in any output.

Each case runs ``plait run`` in a subprocess, as a user does, with the secret exported as
``PLAIT_SECRET_NOWHERE_TOKEN``, then looks for its value in every file under the plait home
(blobs, runs/, job files, logs, the SQLite file and its -wal), every row of every table of the
store, ``plait run``'s stdout and stderr, ``plait executions show --logs`` and
``plait executions events --json``. The plugins' cases live in tests/plugins/<name>/.

The helper itself is proven first: a value planted in a file, a store row and a text is found
in each, with where.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import plait
import pytest
import secret_flows
from plait.engine import build_engine
from plait.model.status import Phase
from plait.testing import assert_secret_nowhere, run_and_show, secret_sightings

FLOWS = str(Path(__file__).parent / "secret_flows.py")


def new_secret() -> str:
    return f"s3cr3t-{uuid.uuid4().hex}"


def test_the_helper_finds_a_value_in_a_file_a_store_row_and_a_text_and_says_where(plait_home: Path):
    planted = new_secret()
    engine = build_engine()
    try:  # a workflow input is stored: the value lands in rows of the store (and so the database file)
        execution = plait.run(secret_flows.python_reads_token, {"name": planted}, engine=engine)
    finally:
        engine.close()
    assert execution.phase == Phase.FAILED  # no secret was set; the input is recorded all the same
    with sqlite3.connect(plait_home / "plait.db") as db:  # and a table of our own: every table is read
        db.execute("CREATE TABLE planted (id INTEGER PRIMARY KEY, note BLOB)")
        db.execute("INSERT INTO planted VALUES (6, 'nothing'), (7, ?)", (b"..." + planted.encode(),))
    (plait_home / "runs").mkdir(exist_ok=True)
    (plait_home / "runs" / "planted.log").write_bytes(b"0123456789" + planted.encode())
    found = secret_sightings(planted, home=plait_home, texts={"captured stdout": f"abc {planted}", "clean": "xyz"})
    kinds = {(s.kind, s.where, s.detail) for s in found}
    assert ("file", str(plait_home / "runs" / "planted.log"), "byte 10") in kinds
    assert ("text", "captured stdout", "character 4") in kinds
    assert not any(s.where == "clean" for s in found)
    assert ("row", "planted.note", "id=7") in kinds
    assert any(s.kind == "row" and s.where == "events.data" for s in found), "the recorded input was not found"
    with pytest.raises(AssertionError, match="planted.log"):
        assert_secret_nowhere(planted, home=plait_home)
    assert_secret_nowhere(new_secret(), home=plait_home, texts={"clean": "xyz"})


def test_the_helper_refuses_a_home_without_a_store(tmp_path: Path):
    with pytest.raises(AssertionError, match="no store"):
        assert_secret_nowhere(new_secret(), home=tmp_path)


@pytest.mark.parametrize("inline", [False, True], ids=["pool", "inline"])
def test_a_python_tasks_secret_appears_nowhere(plait_home: Path, inline: bool):
    secret = new_secret()
    run = run_and_show(f"{FLOWS}:python_reads_token", "--name", "py", *(["--inline"] if inline else []),
                       env={"PLAIT_SECRET_NOWHERE_TOKEN": secret})
    assert run.returncode == 0, run.texts
    assert secret_flows.digest(secret) in run.texts["plait run stdout"], "the task did not read the secret"
    assert "the token's digest is" in run.texts["executions show --logs"], "the task's stdout was not shown"
    if not inline:  # a worker process keeps only the secrets its task declared, in its payload
        assert "engine secrets seen: 0" in run.texts["executions show --logs"]
    assert_secret_nowhere(secret, home=plait_home, texts=run.texts)


def test_a_container_tasks_secret_is_its_environment_variable_and_appears_nowhere(plait_home: Path):
    """The command reads ``nowhere-token`` as ``$NOWHERE_TOKEN``; the engine's PLAIT_SECRET_* stay behind."""
    missing = run_and_show(f"{FLOWS}:container_with_token", "--name", "c")
    assert missing.returncode == 1 and "needs secret 'nowhere-token'" in missing.texts["plait run stderr"]
    secret = new_secret()
    run = run_and_show(f"{FLOWS}:container_with_token", "--name", "c",
                       env={"PLAIT_SECRET_NOWHERE_TOKEN": secret, "PLAIT_SECRET_OTHER": new_secret()})
    assert run.returncode == 0, run.texts
    logs = run.texts["executions show --logs"]
    assert "container c ran" in logs
    assert secret_flows.digest(secret) in logs, "the command did not get the secret"
    assert "engine secrets seen: 0" in logs, "the engine's PLAIT_SECRET_* reached the command"
    assert_secret_nowhere(secret, home=plait_home, texts=run.texts)
