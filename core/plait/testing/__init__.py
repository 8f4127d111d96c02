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
from plait.testing.secrets import (
    CliRun,
    Sighting,
    assert_secret_nowhere,
    in_files,
    in_store,
    in_texts,
    plait_cli,
    run_and_show,
    secret_sightings,
)

__all__ = ["CliRun", "LifecycleCase", "PROBE_SECRET", "Sighting", "TaskTypeLifecycleTests", "alive", "assert_no_secret_on_disk", "assert_secret_nowhere", "assert_started_once", "files_holding", "in_files", "in_store", "in_texts", "make_context", "marked_processes", "plait_cli", "poll_until_done", "run_and_show", "secret_sightings", "submit_and_wait_for_start", "wait_for_start"]
