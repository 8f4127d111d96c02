"""Deterministic object names and plait's labels: valid for Kubernetes, stable, distinct."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from plait.platforms.kubernetes.names import (
    ObjectIdentity,
    execution_selector,
    label_value,
    object_name,
)
from plait.testing.manifests import validate_manifest

DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
ATTEMPT = "20250101-120000-abc123/train/step[12]/1"
IDENTITY = ObjectIdentity("20250101-120000-abc123", "train/step", ATTEMPT, "ml", "development",
                          "python")


def pod(name: str, labels: dict[str, str], annotations: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ml-development", "labels": labels,
                         "annotations": annotations},
            "spec": {"containers": [{"name": "main", "image": "python:3.12"}]}}


def test_the_name_is_the_same_on_every_call():
    assert object_name(ATTEMPT) == object_name(ATTEMPT) == IDENTITY.name()


def test_the_name_is_readable_from_the_attempt_id():
    assert object_name(ATTEMPT).startswith("plait-20250101-120000-abc123-train-step-12-1-")


def test_ids_that_sanitise_to_the_same_text_get_different_names():
    assert object_name("e1/a/1") != object_name("e1-a-1") != object_name("E1/A/1")


def test_ids_that_share_a_long_prefix_get_different_names():
    base = "x" * 100
    assert object_name(base + "/1") != object_name(base + "/2")
    assert len(object_name(base + "/1")) == 63


def test_a_smaller_max_length_leaves_room_for_an_operators_suffix():
    name = object_name(ATTEMPT, max_length=40)
    assert len(name) <= 40 and DNS_1035.match(name)


def test_a_max_length_without_room_for_the_hash_is_refused():
    with pytest.raises(ValueError, match="max_length"):
        object_name(ATTEMPT, max_length=10)


@given(st.text(min_size=1, max_size=300))
def test_any_attempt_id_gives_a_dns_1035_label_of_at_most_63(attempt_id):
    name = object_name(attempt_id)
    assert len(name) <= 63 and DNS_1035.match(name), name


@given(st.text(max_size=200))
def test_any_text_gives_a_valid_label_value(text):
    value = label_value(text)
    assert len(value) <= 63 and LABEL_VALUE.match(value), value


def test_a_valid_label_value_is_kept_as_it_is():
    assert label_value("train.step_1-a") == "train.step_1-a"
    assert label_value("") == ""


def test_an_invalid_or_long_label_value_is_sanitised_with_a_hash_that_keeps_values_apart():
    assert label_value("a/b") != label_value("a-b")
    assert label_value("a/b") != label_value("a:b")
    assert label_value("x" * 64) != label_value("x" * 65)
    assert label_value("a/b").startswith("a-b-")


def test_every_object_gets_the_six_plait_labels():
    labels = IDENTITY.labels()
    assert labels["plait.dev/execution"] == "20250101-120000-abc123"
    assert labels["plait.dev/project"] == "ml"
    assert labels["plait.dev/domain"] == "development"
    assert labels["plait.dev/task-type"] == "python"
    assert labels["plait.dev/node"] == label_value("train/step")
    assert labels["plait.dev/attempt"] == label_value(ATTEMPT)


def test_the_full_ids_of_hashed_labels_are_kept_in_annotations():
    assert IDENTITY.annotations() == {"plait.dev/node": "train/step", "plait.dev/attempt": ATTEMPT}


def test_a_pod_carrying_the_name_labels_and_annotations_validates_against_the_pod_schema():
    long = ObjectIdentity("e" * 80, "n/" * 50, "a/" * 200, "p", "d", "some.plugin/type")
    for identity in (IDENTITY, long):
        validate_manifest(pod(identity.name(), identity.labels(), identity.annotations()))


def test_the_execution_selector_names_the_execution_label():
    assert execution_selector("e1") == "plait.dev/execution=e1"
    assert execution_selector("e/1") == f"plait.dev/execution={label_value('e/1')}"
