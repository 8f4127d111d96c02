"""A Spark task's secret appears nowhere: not under the plait home, not in the store, not in any output."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from plait.testing import assert_secret_nowhere, run_and_show

FLOWS = str(Path(__file__).parent / "sparkflows.py")


def test_a_spark_tasks_secret_appears_nowhere(plait_home: Path):
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    run = run_and_show(f"{FLOWS}:reads_token", "--digest", hashlib.sha256(secret.encode()).hexdigest(),
                       env={"PLAIT_SECRET_SPARK_TOKEN": secret})
    assert run.returncode == 0, run.texts
    assert "seen=True" in run.texts["plait run stdout"], "the task did not read the secret"
    assert list(plait_home.rglob("job.json")), "the attempt's job.json was not under the plait home"
    assert_secret_nowhere(secret, home=plait_home, texts=run.texts)
