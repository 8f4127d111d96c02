"""What plugin authors test with: the lifecycle suite every task type passes."""

from plait.testing.lifecycle import (
    PROBE_SECRET,
    LifecycleCase,
    TaskTypeLifecycleTests,
    alive,
    assert_no_secret_on_disk,
    assert_started_once,
    files_holding,
    make_context,
    marked_processes,
    poll_until_done,
    submit_and_wait_for_start,
    wait_for_start,
)

__all__ = ["LifecycleCase", "PROBE_SECRET", "TaskTypeLifecycleTests", "alive", "assert_no_secret_on_disk", "assert_started_once", "files_holding", "make_context", "marked_processes", "poll_until_done", "submit_and_wait_for_start", "wait_for_start"]
