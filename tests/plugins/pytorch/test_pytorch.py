"""plait-pytorch with real torch (CPU, gloo) under torch.distributed.run."""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path

import plait
import torch
import training  # noqa: E402
from plait.model.status import Phase
from plait.testing.lifecycle import LifecycleCase, TaskTypeLifecycleTests, alive, files_holding
from plait.types.engine import ValueIO
from plait.types.engine import engine as type_engine
from plait_pytorch.hooks import PyTorchTask


class TestPyTorchLifecycle(TaskTypeLifecycleTests):
    def case(self, tmp_path: Path) -> LifecycleCase:
        type_engine()
        marker = tmp_path / "starts"
        return LifecycleCase(
            new_task_type=PyTorchTask,
            quick=training.whoami.template, quick_inputs={"tag": "x"}, expected_outputs={"o0": [0, 1]},
            slow=training.slow.template, slow_inputs={"seconds": 300, "marker": str(marker)},  # aborted by every test: outlasts the attach tests' watch (twice its start)
            # both ranks append a line: the work has started once per two lines
            starts=lambda: len(marker.read_text().splitlines()) // 2 if marker.exists() else 0,
            start_timeout=15,  # torchrun, two ranks and a gloo rendezvous: 8-11 s measured with the load at 3
            timeout=120,
        )


def test_every_rank_runs_and_rank_zero_returns():
    execution = plait.run(training.gather, {"tag": "hello"})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"o0": [0, 1]}


def test_every_rank_reads_the_tasks_secret_which_no_file_holds(plait_home, monkeypatch):
    token = f"torch-token-{uuid.uuid4().hex}"
    monkeypatch.setenv("PLAIT_SECRET_TORCH_TOKEN", token)
    execution = plait.run(training.reads_token, {"digest": hashlib.sha256(token.encode()).hexdigest()})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"o0": [1, 1]}
    jobs = list(plait_home.rglob("job.json"))
    assert jobs, "the attempt's job.json was not under the plait home"
    assert files_holding([token], [plait_home]) == [], "the secret's value was written to a file"


def test_a_failing_rank_fails_the_attempt_with_its_traceback_and_stops_the_others():
    started = time.monotonic()
    execution = plait.run(training.failing, {"x": 7})
    assert time.monotonic() - started < 45, "rank 0 was not stopped when rank 1 failed"
    assert execution.phase == Phase.FAILED
    assert "rank 1 failed" in execution.error and "ValueError: rank 1 cannot handle 7" in execution.error
    assert 'raise ValueError(f"rank {ctx.rank} cannot handle {x}")' in execution.error


def test_a_retried_training_resumes_from_the_last_checkpoint(tmp_path, fast_retries):
    log = tmp_path / "log"
    execution = plait.run(training.fit_and_predict, {"epochs": 5, "fail_at": 3, "log": str(log)},
                          options=fast_retries())
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert log.read_text().splitlines() == ["attempt 1 starts at epoch 0", "attempt 2 starts at epoch 3"]
    assert abs(execution.outputs["o0"] - 6.0) < 0.05  # learned y = 3x


def test_tensors_and_modules_round_trip_through_the_blob_store(tmp_path):
    from plait.storage.blobs import BlobStore

    engine = type_engine()
    vio = ValueIO(BlobStore(str(tmp_path)))
    encode, decode = engine.codec(torch.Tensor, vio)
    t = torch.arange(6.0).reshape(2, 3)
    assert torch.equal(decode(encode(t)), t)
    encode, decode = engine.codec(torch.nn.Module, vio)
    model = torch.nn.Linear(3, 1)
    back = decode(encode(model))
    assert torch.equal(back.weight, model.weight) and isinstance(back, torch.nn.Linear)
    assert engine.spec(torch.Tensor).kind == "torch.tensor"


def test_abort_leaves_no_rank_behind(tmp_path):
    from plait.testing.lifecycle import make_context, poll_until_done

    type_engine()
    marker = tmp_path / "starts"
    task_type = PyTorchTask()
    ctx = make_context(tmp_path, "abort/slow/1", {"seconds": 60, "marker": str(marker)})
    handle = task_type.submit(ctx, training.slow.template)
    deadline = time.monotonic() + 60
    while not marker.exists() or len(marker.read_text().split()) < 2:
        assert time.monotonic() < deadline, "the ranks did not start"
        time.sleep(0.1)
    ranks = [int(p) for p in marker.read_text().split()]
    task_type.abort(ctx, handle)
    assert poll_until_done(task_type, ctx, handle, 30).phase in (Phase.FAILED, Phase.ABORTED)
    time.sleep(0.3)
    assert not any(alive(pid) for pid in ranks), "a rank outlived the abort"
    assert not alive(handle["pid"])
    task_type.cleanup(ctx, handle)


def test_an_elastic_job_runs_under_a_rendezvous():
    execution = plait.run(training.elastic, {"x": 10})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"o0": 10 + 11}


def test_an_elastic_config_with_min_nodes_above_max_nodes_is_rejected():
    import pytest
    from plait_pytorch import Elastic, PyTorch
    with pytest.raises(ValueError, match="min_nodes <= max_nodes"):
        PyTorch(elastic=Elastic(min_nodes=3, max_nodes=2))
