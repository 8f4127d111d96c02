"""What plugin authors test with: the lifecycle suite every task type passes, secret checks,
a Kubernetes API emulator and manifest validation (both need the `test` extra's packages only
when used, never on import)."""

from plait.testing.kubeapi import ApiStatusError, KubeAPI, ResourceType, Subscription, WatchEvent
from plait.testing.kubelet import Kubelet
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
    processes_outliving,
    submit_and_wait_for_start,
    wait_for_start,
)
from plait.testing.manifests import ManifestError, Violation, validate_manifest, validate_manifests
from plait.testing.operators import SparkOperator, TrainingOperator
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

__all__ = [
    "ApiStatusError", "CliRun", "KubeAPI", "Kubelet", "LifecycleCase", "ManifestError", "PROBE_SECRET",
    "ResourceType", "Sighting", "SparkOperator", "Subscription", "TaskTypeLifecycleTests", "TrainingOperator",
    "Violation",
    "WatchEvent", "alive", "assert_no_secret_on_disk", "assert_secret_nowhere",
    "assert_started_once", "files_holding", "in_files", "in_store", "in_texts", "make_context",
    "marked_processes", "plait_cli", "poll_until_done", "processes_outliving", "run_and_show", "secret_sightings",
    "submit_and_wait_for_start", "validate_manifest", "validate_manifests", "wait_for_start",
]
