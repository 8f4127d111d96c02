import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402
from standins.bqemu_process import BqEmulator, missing_requirements  # noqa: E402
from standins.slowjobs import SlowJobsServer  # noqa: E402

BQ_PROJECT = "test-project"

# bqemulator registers a pytest plugin whose import needs ``testcontainers``; the test extra
# installs it, so plain ``pytest`` works (this conftest's fixtures take precedence over its).


@pytest.fixture(scope="session")
def bq_emulator():
    """bqemulator in its own process on a free port (offline, in-memory), shared by the session.

    Yields a ``BqEmulator`` with ``endpoint`` (``http://127.0.0.1:PORT``), ``project`` and
    ``client(project=None)`` returning a real ``google.cloud.bigquery.Client``. Projects need
    no creation; create datasets with ``client.create_dataset(..., exists_ok=True)``. State is
    shared across tests: use unique dataset/table/job ids per test.
    """
    problem = missing_requirements()
    if problem:
        pytest.fail(problem, pytrace=False)
    emulator = BqEmulator(project=BQ_PROJECT)
    try:
        emulator.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def slow_bq(bq_emulator):
    """A fresh ``SlowJobsServer`` (see slowjobs.py) in front of the session's bqemulator.

    ``slow_bq.endpoint``, ``slow_bq.calls``, ``slow_bq.set_running_polls(n)`` (default 3),
    ``slow_bq.fail_with(reason)``, ``slow_bq.fail_next_inserts(n)``, ``slow_bq.client()``.
    Query jobs stay RUNNING for ``n`` jobs.get polls and are then executed on bqemulator;
    everything else is forwarded there.
    """
    with SlowJobsServer(bq_emulator.endpoint, project=bq_emulator.project) as stub:
        yield stub


@pytest.fixture
def bq_multipart_uploads(monkeypatch):
    """Let ``load_table_from_dataframe`` / ``load_table_from_json`` work against bqemulator.

    The client sends the media part of multipart uploads as ``Content-Type: */*``, which
    bqemulator 1.3.0 rejects (HTTP 400). Only affects this process.
    """
    import google.cloud.bigquery.client as bq_client_module

    monkeypatch.setattr(bq_client_module, "_GENERIC_CONTENT_TYPE", "application/octet-stream")
