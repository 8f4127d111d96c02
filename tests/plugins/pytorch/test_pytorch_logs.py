"""A PyTorch attempt's log is what its ranks printed, every rank's stream labelled."""

from __future__ import annotations

import sys

import plait
from kept_logs import cli_logs, kept_logs
from plait import current_context
from plait.model.status import Phase
from plait_pytorch import PyTorch


@plait.task(plugin=PyTorch(nproc_per_node=2))
def chatty(tag: str) -> int:
    rank = current_context().rank
    print(f"rank {rank} says {tag}")
    print(f"rank {rank} warns {tag}", file=sys.stderr)
    return rank


@plait.workflow
def chatty_wf(tag: str) -> int:
    return chatty(tag=tag)


def test_every_ranks_stdout_and_stderr_is_the_log_each_labelled_once():
    execution = plait.run(chatty_wf, {"tag": "hello"})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    parts, notes = kept_logs(execution.execution_id, "chatty")
    assert sorted(parts) == ["rank0.stderr", "rank0.stdout", "rank1.stderr", "rank1.stdout"], parts
    for rank in (0, 1):
        # the ranks' own files, not torchrun's prefixed copies ("[default0]:rank 0 says hello")
        assert parts[f"rank{rank}.stdout"].text == f"rank {rank} says hello\n"
        assert parts[f"rank{rank}.stderr"].text == f"rank {rank} warns hello\n"
    assert notes == []
    shown = cli_logs(execution.execution_id, "chatty")
    assert shown.returncode == 0, shown.stderr
    assert "==> rank1.stdout <==\nrank 1 says hello\n" in shown.stdout
    assert "==> rank0.stderr <==\nrank 0 warns hello\n" in shown.stderr
    assert "warns" not in shown.stdout and "says" not in shown.stderr
