"""The shared watch's pure cache: events in, changes out, ordering and 410 decided here."""

from __future__ import annotations

import itertools

import pytest
from plait.platforms.kubernetes.watch import Change, WatchCache, newer


def obj(name: str, rv: int, phase: str = "Pending") -> dict:
    return {"metadata": {"name": name, "resourceVersion": str(rv)}, "status": {"phase": phase}}


def listed(*items: dict, rv: int) -> WatchCache:
    cache = WatchCache()
    cache.replace(list(items), str(rv))
    return cache


def test_a_new_cache_must_list_before_it_can_watch():
    assert WatchCache().needs_list
    assert WatchCache().resource_version is None


def test_a_list_fills_the_cache_and_sets_where_the_watch_starts():
    cache = WatchCache()
    changes = cache.replace([obj("a", 3), obj("b", 5)], "7")
    assert [(c.type, c.name) for c in changes] == [("ADDED", "a"), ("ADDED", "b")]
    assert cache.resource_version == "7" and not cache.needs_list
    assert cache.get("a")["metadata"]["resourceVersion"] == "3"
    assert cache.names() == ["a", "b"]


def test_added_then_modified_keeps_the_latest_version_and_moves_the_resource_version():
    cache = listed(rv=1)
    assert cache.apply("ADDED", obj("a", 2)) == Change("ADDED", "a", obj("a", 2))
    assert cache.apply("MODIFIED", obj("a", 4, "Running")).type == "MODIFIED"
    assert cache.get("a")["status"]["phase"] == "Running"
    assert cache.resource_version == "4"


def test_deleted_removes_the_object():
    cache = listed(obj("a", 2), rv=2)
    change = cache.apply("DELETED", obj("a", 3))
    assert change is not None and change.type == "DELETED"
    assert cache.get("a") is None
    assert cache.resource_version == "3"


def test_a_repeated_event_changes_nothing():
    cache = listed(rv=1)
    cache.apply("ADDED", obj("a", 2))
    assert cache.apply("ADDED", obj("a", 2)) is None
    assert cache.apply("MODIFIED", obj("a", 2)) is None


def test_an_event_older_than_the_cached_object_is_ignored():
    cache = listed(obj("a", 5, "Running"), rv=5)
    assert cache.apply("MODIFIED", obj("a", 4, "Pending")) is None
    assert cache.get("a")["status"]["phase"] == "Running"
    assert cache.resource_version == "5"  # never moves backwards


def test_a_late_event_cannot_resurrect_a_deleted_object():
    cache = listed(obj("a", 2), rv=2)
    cache.apply("DELETED", obj("a", 6))
    assert cache.apply("MODIFIED", obj("a", 5, "Running")) is None
    assert cache.get("a") is None


def test_an_object_recreated_under_the_same_name_after_deletion_is_seen():
    cache = listed(obj("a", 2), rv=2)
    cache.apply("DELETED", obj("a", 3))
    change = cache.apply("ADDED", obj("a", 4))
    assert change is not None and change.type == "ADDED"
    assert cache.get("a") is not None


def test_a_stale_delete_does_not_remove_a_newer_object():
    cache = listed(obj("a", 8), rv=8)
    assert cache.apply("DELETED", obj("a", 7)) is None
    assert cache.get("a") is not None


def test_deleting_an_unknown_object_changes_nothing_but_records_it():
    cache = listed(rv=1)
    assert cache.apply("DELETED", obj("a", 3)) is None
    assert cache.apply("ADDED", obj("a", 2)) is None  # older than its deletion


def test_a_bookmark_only_moves_the_resource_version():
    cache = listed(obj("a", 2), rv=2)
    assert cache.apply("BOOKMARK", {"metadata": {"resourceVersion": "9"}}) is None
    assert cache.resource_version == "9"
    assert cache.names() == ["a"]


def test_an_unknown_event_type_is_refused():
    with pytest.raises(ValueError, match="ERROR"):
        listed(rv=1).apply("ERROR", {"metadata": {"name": "x"}})


def test_410_gone_means_list_again_and_forgets_the_resource_version():
    cache = listed(obj("a", 2), rv=2)
    assert cache.after_error(410) == "relist"
    assert cache.needs_list
    assert cache.get("a") is not None  # polls keep answering from the last known state


@pytest.mark.parametrize("code", [None, 500, 503, 429, 401])
def test_other_failures_resume_from_the_same_resource_version(code):
    cache = listed(obj("a", 2), rv=4)
    assert cache.after_error(code) == "resume"
    assert cache.resource_version == "4"


def test_a_failure_before_the_first_list_still_means_list():
    assert WatchCache().after_error(None) == "relist"


def test_a_relist_reports_what_changed_while_the_watch_was_gone():
    cache = listed(obj("a", 2), obj("b", 3), obj("c", 4), rv=4)
    cache.after_error(410)
    changes = cache.replace([obj("a", 2), obj("b", 9, "Succeeded"), obj("d", 10)], "12")
    assert sorted((c.type, c.name) for c in changes) == [
        ("ADDED", "d"), ("DELETED", "c"), ("MODIFIED", "b")]
    assert cache.get("b")["status"]["phase"] == "Succeeded"
    assert cache.get("c") is None
    assert cache.resource_version == "12"


def test_a_relist_keeps_an_object_observed_after_the_list_was_made():
    cache = listed(rv=4)
    cache.observe(obj("new", 20))  # e.g. the reply to a create, newer than the list below
    cache.observe(obj("old", 3, "Running"))
    cache.replace([obj("old", 2, "Pending")], "15")
    assert cache.get("new") is not None
    assert cache.get("old")["status"]["phase"] == "Running"


def test_a_list_clears_an_old_tombstone_so_the_listed_object_is_kept():
    cache = listed(obj("a", 2), rv=2)
    cache.apply("DELETED", obj("a", 3))
    cache.replace([obj("a", 5)], "6")
    assert cache.get("a") is not None
    assert cache.apply("MODIFIED", obj("a", 4)) is None  # older than what was listed


def test_an_object_deleted_by_a_relist_cannot_come_back_through_a_late_event():
    cache = listed(obj("a", 2), rv=2)
    cache.replace([], "10")
    assert cache.apply("MODIFIED", obj("a", 9)) is None
    assert cache.get("a") is None


def test_observing_does_not_move_the_resource_version():
    cache = listed(rv=4)
    cache.observe(obj("a", 20))
    assert cache.resource_version == "4"


def test_get_returns_a_copy_the_caller_cannot_corrupt():
    cache = listed(obj("a", 2), rv=2)
    cache.get("a")["status"]["phase"] = "Broken"
    assert cache.get("a")["status"]["phase"] == "Pending"


def test_any_order_of_the_same_events_ends_with_the_latest_state():
    events = [("ADDED", obj("a", 2)), ("MODIFIED", obj("a", 3, "Running")),
              ("MODIFIED", obj("a", 4, "Succeeded")), ("ADDED", obj("b", 5)),
              ("DELETED", obj("b", 6))]
    for order in itertools.permutations(events):
        cache = listed(rv=1)
        for kind, o in order:
            cache.apply(kind, o)
        assert cache.get("a")["status"]["phase"] == "Succeeded", order
        assert cache.get("b") is None, order
        assert cache.resource_version == "6"


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("10", "9", True), ("9", "10", False), ("5", "5", False), ("x", "y", True), ("x", "x", False)])
def test_resource_versions_compare_as_numbers_when_they_are(a, b, expected):
    assert newer(a, b) is expected
