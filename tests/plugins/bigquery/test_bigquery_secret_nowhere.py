"""A BigQuery task's credentials (``credentials_secret``) appear nowhere: not under the plait home,
not in the store, not in any output.

The key cannot be a working one here (a service-account key is exchanged for a token at
Google's token endpoint, which the tests cannot reach), so the task is given a key the plugin
reads and refuses: the attempt fails with "not a service-account JSON key", the path where a
careless plugin would echo the credential into an error, an event or a log.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from plait.testing import assert_secret_nowhere, run_and_show

FLOW = '''
import plait
from plait_bigquery import bigquery_task

q = bigquery_task("q", "SELECT 1 AS x", outputs={{"x": int}}, api_endpoint={endpoint!r}, project={project!r},
                  credentials_secret="bq_key")


@plait.workflow
def one() -> int:
    return q()
'''


def test_a_bigquery_tasks_credentials_appear_nowhere(plait_home: Path, tmp_path: Path, bq_emulator):
    flow = tmp_path / "bq_secret_flow.py"
    flow.write_text(FLOW.format(endpoint=bq_emulator.endpoint, project=bq_emulator.project))
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    key = json.dumps({"type": "service_account", "private_key": secret})
    run = run_and_show(f"{flow}:one", env={"PLAIT_SECRET_BQ_KEY": key})
    assert run.returncode == 1
    assert "not a service-account JSON key" in run.texts["plait run stderr"], "the plugin did not read the key"
    assert_secret_nowhere(secret, home=plait_home, texts=run.texts)
    assert_secret_nowhere(key, home=plait_home, texts=run.texts)
