"""A notebook task's secret appears nowhere: not under the plait home, not in the store, not in any output.

The notebook itself cannot read the secret: the runner takes it out of its environment before
the kernel starts (plait_papermill/run.py), and a notebook has no ``current_context()``. What
is proven is that plait resolves it for the task (a missing one fails the attempt) and that,
handed to the runner, its value is written nowhere: not in job.json, the executed notebook,
its HTML report or the logs.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import notebooks
import plait
from plait.testing import assert_secret_nowhere, run_and_show
from plait_papermill import notebook_task

token_quick = notebook_task("token-quick", notebooks.QUICK, inputs={"a": int, "b": int},
                            outputs={"total": int}, secrets=["nb_token"])


@plait.workflow
def notebook_with_token(a: int, b: int) -> int:
    return token_quick(a=a, b=b)


def test_a_notebook_tasks_secret_appears_nowhere(plait_home: Path):
    flow = f"{__file__}:notebook_with_token"
    missing = run_and_show(flow, "--a", "2", "--b", "3")
    assert missing.returncode == 1 and "needs secret 'nb_token'" in missing.texts["plait run stderr"]
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    run = run_and_show(flow, "--a", "2", "--b", "3", env={"PLAIT_SECRET_NB_TOKEN": secret})
    assert run.returncode == 0, run.texts
    assert "5" in run.texts["plait run stdout"]
    assert list(plait_home.rglob("job.json")) and list(plait_home.rglob("executed.ipynb"))
    assert_secret_nowhere(secret, home=plait_home, texts=run.texts)
