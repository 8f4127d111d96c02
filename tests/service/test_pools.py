"""``plait pools`` without Redis: holders and waiters read from the running executions' events."""

from __future__ import annotations

from pathlib import Path

import plait
from plait.model.events import Event
from plait.model.status import Phase
from plait.service.pools import pools_from_store
from plait.storage.events import EventStore
from plait.storage.queue import ExecutionQueue


@plait.task
def one() -> int:
    return 1


@plait.workflow
def tiny() -> int:
    return one()


def test_a_running_execution_older_than_many_newer_ones_is_still_counted(tmp_path: Path):
    store = EventStore(f"sqlite:///{tmp_path / 'plait.db'}")
    queue = ExecutionQueue(store)
    queue.enqueue("old-running", tiny.spec, {}, {}, "alpha", "development", owner="engine-1")
    store.set_execution_phase("old-running", "running")
    store.append(Event("old-running", "attempt", "n0/1", Phase.RUNNING,
                       {"node": "n0", "attempt": 1, "pools": {"warehouse": 2}, "tenant": "alpha/development"}))
    store.append(Event("old-running", "attempt", "n1/1", Phase.WAITING_FOR_RESOURCES,
                       {"node": "n1", "attempt": 1, "pools": {"warehouse": 1}, "tenant": "alpha/development"}))
    store.flush()
    for i in range(250):  # newer executions, queued and not started: they hold nothing
        queue.enqueue(f"new-{i:03}", tiny.spec, {}, {}, "beta", "development")
    assert pools_from_store(store) == {"warehouse": {"holders": {"alpha/development": 2},
                                                     "waiters": {"alpha/development": 1}}}
    store.close()
