"""A Snowflake task's password (``password_secret``) appears nowhere: not under the plait home,
not in the store, not in any output.

``plait run`` runs a flow file written for the fake Snowflake's port. fakesnow accepts any
password, so that the task got it is shown by the run without it failing for want of it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from plait.testing import assert_secret_nowhere, run_and_show

FLOW = '''
import plait
from plait_snowflake import snowflake_task

add = snowflake_task("add", "SELECT {{{{inputs.a}}}} + {{{{inputs.b}}}} AS total", inputs={{"a": int, "b": int}},
                     outputs={{"total": int}}, account={account!r}, user={user!r}, password_secret="sf_password",
                     host={host!r}, port={port!r}, protocol={protocol!r}, database={database!r}, schema={schema!r})


@plait.workflow
def add_on_snowflake(a: int, b: int) -> int:
    return add(a=a, b=b)
'''


def test_a_snowflake_tasks_password_appears_nowhere(plait_home: Path, tmp_path: Path, fakesnow_server):
    flow = tmp_path / "sf_secret_flow.py"
    flow.write_text(FLOW.format(**fakesnow_server))
    target = f"{flow}:add_on_snowflake"
    missing = run_and_show(target, "--a", "2", "--b", "3")
    assert missing.returncode == 1 and "needs secret 'sf_password'" in missing.texts["plait run stderr"]
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    run = run_and_show(target, "--a", "2", "--b", "3", "--json", env={"PLAIT_SECRET_SF_PASSWORD": secret})
    assert run.returncode == 0, run.texts
    assert '"o0": 5' in run.texts["plait run stdout"]
    assert_secret_nowhere(secret, home=plait_home, texts=run.texts)
