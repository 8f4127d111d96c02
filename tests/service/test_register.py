"""Registering into the local store, and launch plans checked when they are defined."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import plait
import pytest
from plait.model.errors import CompileError, EntityConflictError, InputError, TypeMismatchError
from plait.model.registered import LaunchPlanSpec, RegisteredWorkflow
from plait.service.register import build_registration, checked_entities, collect, register_local
from plait.storage.blobs import BlobStore
from plait.storage.entities import EntityStore
from plait.storage.events import EventStore
from plait.types.engine import ValueIO, encode_values
from shop_package import entity_names, write_package


@pytest.fixture
def local(tmp_path: Path):
    store = EventStore(f"sqlite:///{tmp_path / 'plait.db'}")
    yield EntityStore(store), BlobStore(str(tmp_path / "blobs"))
    store.close()


def test_registering_a_package_stores_every_entity_and_its_code_once_and_again_changes_nothing(local, tmp_path):
    entities, blobs = local
    path = write_package(tmp_path / "src", "shop_l1")
    results, activated = register_local(entities, blobs, path, "p", "development", "v1")
    assert {(r.entity.kind, r.entity.name) for r in results} == entity_names("shop_l1")
    assert all(r.created for r in results) and activated == []
    workflow = RegisteredWorkflow.model_validate(entities.get("p", "development", "workflow", "shop_l1.flows.quote",
                                                              "v1").body)  # type: ignore[union-attr]
    assert workflow.code is not None and workflow.code.uri == blobs.uri("code", f"{workflow.code.digest}.tar.gz")
    assert hashlib.sha256(blobs.read_bytes(workflow.code.uri)).hexdigest() == workflow.code.digest
    assert workflow.code.root == "."  # task files are relative to the archive
    plan = LaunchPlanSpec.model_validate(entities.get("p", "development", "launch_plan", "shop_l1.flows.quote",
                                                      "v1").body)  # type: ignore[union-attr]
    assert (plan.workflow, plan.workflow_version, plan.schedule) == ("shop_l1.flows.quote", "v1", None)

    again, _ = register_local(entities, blobs, path, "p", "development", "v1")
    assert not any(r.created for r in again)
    assert [r.entity for r in again] == [r.entity for r in results]


def test_a_conflict_anywhere_in_the_set_registers_none_of_it(local, tmp_path):
    entities, blobs = local
    path = write_package(tmp_path / "src", "shop_l2")
    register_local(entities, blobs, path, "p", "development", "v1")
    flows = path / "flows.py"
    flows.write_text(flows.read_text().replace('{"amount": 10}', '{"amount": 11}')
                     + "\n\n@plait.workflow\ndef extra(amount: int) -> float:\n    return price(amount=amount)\n")
    with pytest.raises(EntityConflictError) as refused:
        register_local(entities, blobs, path, "p", "development", "v1")
    assert "launch_plan 'shop_l2.flows.hourly' version 'v1'" in str(refused.value)
    assert '-    "amount": 10\n+    "amount": 11' in str(refused.value)
    assert entities.list_versions("p", "development", "workflow", "shop_l2.flows.extra") == []
    assert entities.list_versions("p", "development", "task", "shop_l2.tasks.price")[0].created > 0


def test_activate_makes_the_registered_launch_plans_the_active_versions(local, tmp_path):
    entities, blobs = local
    path = write_package(tmp_path / "src", "shop_l3")
    _, activated = register_local(entities, blobs, path, "p", "development", "v1", activate=True)
    assert sorted(activated) == ["shop_l3.flows.hourly", "shop_l3.flows.quote"]
    register_local(entities, blobs, path, "p", "development", "v2")
    assert entities.active("p", "development", "shop_l3.flows.hourly").version == "v1"  # type: ignore[union-attr]
    entities.activate("p", "development", "shop_l3.flows.hourly", "v2")
    assert entities.active("p", "development", "shop_l3.flows.hourly").version == "v2"  # type: ignore[union-attr]


def test_plait_register_without_a_server_registers_into_the_local_store(tmp_path):
    path = write_package(tmp_path / "src", "shop_l4")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    env["PLAIT_HOME"] = str(tmp_path / "home")
    command = [sys.executable, "-m", "plait.cli", "register", str(path), "--version", "v1"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "created    task         shop_l4.tasks.price@v1" in first.stdout
    assert "4 created, 0 unchanged in default/development" in first.stdout
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert "unchanged  launch_plan  shop_l4.flows.hourly@v1" in again.stdout
    assert "0 created, 4 unchanged in default/development" in again.stdout
    store = EventStore(f"sqlite:///{tmp_path / 'home' / 'plait.db'}")
    try:
        assert EntityStore(store).names("default", "development", "launch_plan") == [
            "shop_l4.flows.hourly", "shop_l4.flows.quote"]
    finally:
        store.close()


def test_an_unnamed_plan_is_named_after_its_variable_and_one_named_as_its_workflow_replaces_the_default(tmp_path):
    folder = tmp_path / "solo"
    folder.mkdir()
    (folder / "solo_flows.py").write_text('''import plait


@plait.task
def double(x: int) -> int:
    return 2 * x


@plait.workflow
def twice(x: int) -> int:
    return double(x=x)


every_five = plait.LaunchPlan(twice, fixed_inputs={"x": 3}, schedule=plait.FixedRate(minutes=5))
default = plait.LaunchPlan(twice, name="solo_flows.twice", default_inputs={"x": 1}, labels={"team": "a"})
''')
    registration = build_registration(collect(folder / "solo_flows.py"), "v1", ship=lambda packed: "file:///x")
    plans = {e.name: e.body for e in registration.entities if e.kind == "launch_plan"}
    assert set(plans) == {"solo_flows.every_five", "solo_flows.twice"}
    assert plans["solo_flows.every_five"]["schedule"]["every_s"] == 300
    assert plans["solo_flows.every_five"]["fixed_inputs"] == {"x": 3}
    assert (plans["solo_flows.twice"]["default_inputs"], plans["solo_flows.twice"]["labels"]) == ({"x": 1},
                                                                                                  {"team": "a"})


def test_a_task_whose_code_lies_outside_the_registered_tree_is_refused(tmp_path):
    other = write_package(tmp_path / "elsewhere", "shop_l5")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "uses_other.py").write_text(f'''import sys
sys.path.insert(0, {str(other.parent)!r})
import plait
from shop_l5.tasks import price


@plait.workflow
def wrapped(amount: int) -> float:
    return price(amount=amount)
''')
    with pytest.raises(CompileError, match=r"task 'shop_l5.tasks.price' is imported from .*elsewhere, outside"):
        build_registration(collect(mine / "uses_other.py"), "v1", ship=lambda packed: "file:///x")


# -- launch plans checked when defined ---------------------------------------------------------


@plait.task
def _stamp(day: dt.date, region: str) -> str:
    return f"{region}:{day}"


@plait.workflow
def report(day: dt.date, region: str, when: dt.datetime | None = None, count: int = 1) -> str:
    return _stamp(day=day, region=region)


def test_inputs_are_stored_as_the_literals_the_engine_reads():
    plan = plait.LaunchPlan(report, name="daily", default_inputs={"region": "eu"},
                            fixed_inputs={"day": dt.date(2026, 1, 2)})
    spec = plan.spec("v3")
    expected = encode_values({"day": dt.date(2026, 1, 2)}, {"day": dt.date}, ValueIO(None), what="input")
    assert spec.fixed_inputs == expected and spec.default_inputs == {"region": "eu"}
    assert (spec.name, spec.workflow, spec.workflow_version) == ("daily", report.name, "v3")


def test_an_input_of_the_wrong_type_names_the_plan_the_input_and_both_types():
    with pytest.raises(TypeMismatchError) as wrong:
        plait.LaunchPlan(report, name="daily", default_inputs={"count": "three"})
    assert str(wrong.value) == "launch plan 'daily': default input 'count' expects int, got str 'three'"


def test_an_unknown_input_names_the_workflows_inputs():
    with pytest.raises(CompileError, match="launch plan 'daily': fixed input 'cuont' is not an input of workflow "
                                           r".*report; its inputs are day, region, when, count"):
        plait.LaunchPlan(report, name="daily", fixed_inputs={"cuont": 3})


def test_an_input_both_default_and_fixed_is_refused():
    with pytest.raises(CompileError, match="input 'region' is both a default and a fixed input"):
        plait.LaunchPlan(report, name="daily", default_inputs={"region": "eu"}, fixed_inputs={"region": "us"})


def test_the_fire_time_goes_only_to_a_datetime_or_str_input():
    schedule = plait.Cron("0 2 * * *", fire_time_input="count")
    with pytest.raises(CompileError, match="fire_time_input 'count' is of type int; the fire time is passed as a "
                                           "datetime or a str"):
        plait.LaunchPlan(report, name="daily", fixed_inputs={"day": dt.date(2026, 1, 2), "region": "eu"},
                         schedule=schedule)
    with pytest.raises(CompileError, match="fire_time_input 'at' is not an input of workflow"):
        plait.LaunchPlan(report, name="daily", schedule=plait.Cron("0 2 * * *", fire_time_input="at"))
    fine = plait.LaunchPlan(report, name="daily", default_inputs={"day": dt.date(2026, 1, 2), "region": "eu"},
                            schedule=plait.Cron("0 2 * * *", timezone="Europe/Paris", fire_time_input="when"))
    assert fine.spec("v1").schedule.fire_time_input == "when"  # type: ignore[union-attr]


def test_a_scheduled_plan_must_give_every_required_input():
    with pytest.raises(CompileError, match="has a schedule, but nothing gives workflow input 'region' a value"):
        plait.LaunchPlan(report, name="daily", fixed_inputs={"day": dt.date(2026, 1, 2)},
                         schedule=plait.FixedRate(hours=1))


@pytest.mark.parametrize("expression, message", [
    ("0 * * *", "has 4 fields; it needs five"),
    ("60 * * * *", "minute field '60' has 60, outside 0-59"),
    ("*/0 * * * *", "a step is a whole number of at least 1"),
    ("0 0 * foo *", "month field 'foo' has 'foo', not a number or a name"),
    ("0 0 30 2 *", "matches no day"),
])
def test_a_cron_expression_is_checked_by_the_schedulers_own_rules(expression, message):
    with pytest.raises(CompileError) as bad:
        plait.Cron(expression)
    assert message in str(bad.value)


def test_schedules_need_a_known_time_zone_and_a_positive_rate():
    assert plait.Cron("30 8 * jan-mar mon-fri", timezone="Europe/Paris").cron == "30 8 * jan-mar mon-fri"
    with pytest.raises(CompileError, match="unknown time zone 'Mars/Olympus'"):
        plait.Cron("0 * * * *", timezone="Mars/Olympus")
    with pytest.raises(CompileError, match="the rate must be a positive interval"):
        plait.FixedRate(seconds=0)
    assert plait.FixedRate(hours=1, minutes=30).every_s == 5400


def test_what_a_server_receives_is_checked_before_anything_is_stored(local, tmp_path):
    entities, blobs = local
    plan = {"name": "p1", "workflow": "wf", "workflow_version": "v1"}
    with pytest.raises(InputError, match="launch plan 'p1': workflow 'wf' version 'v1' is neither in this "
                                         "registration nor registered in p/development"):
        checked_entities(entities, blobs, "p", "development", "v1", [("launch_plan", "p1", plan)])
    with pytest.raises(InputError, match="launch_plan 'p2': its body names it 'p1'"):
        checked_entities(entities, blobs, "p", "development", "v1", [("launch_plan", "p2", plan)])
    bad_cron = {**plan, "schedule": {"cron": "0 25 * * *"}}
    with pytest.raises(InputError, match="hour field '25' has 25, outside 0-23"):
        checked_entities(entities, blobs, "p", "development", "v1", [("launch_plan", "p1", bad_cron)])
    with pytest.raises(InputError, match="version 'v 1': give a non-empty version"):
        checked_entities(entities, blobs, "p", "development", "v 1", [])


def test_the_same_code_registered_from_two_checkouts_is_the_same_content(local, tmp_path):
    """Task files are stored relative to the archive, not as the registering machine's paths:
    CI and a laptop registering one release agree instead of conflicting."""
    entities, blobs = local
    first = register_local(entities, blobs, write_package(tmp_path / "laptop" / "src", "shop_l9"), "p",
                           "development", "v1")[0]
    again = register_local(entities, blobs, write_package(tmp_path / "ci" / "checkout", "shop_l9"), "p",
                           "development", "v1")[0]
    assert all(r.created for r in first) and not any(r.created for r in again)
    body = RegisteredWorkflow.model_validate(entities.get("p", "development", "workflow", "shop_l9.flows.quote",
                                                          "v1").body)  # type: ignore[union-attr]
    assert body.code is not None and body.code.root == "."
    assert "laptop" not in str(body.model_dump()) and "checkout" not in str(body.model_dump())


def test_a_refused_registration_leaves_no_code_archive_behind(local, tmp_path):
    entities, blobs = local
    path = write_package(tmp_path / "src", "shop_l10")
    register_local(entities, blobs, path, "p", "development", "v1")
    stored = blobs.list(blobs.uri("code") + "/")
    assert len(stored) == 1
    tasks = path / "tasks.py"
    tasks.write_text(tasks.read_text().replace("amount * rate", "amount * rate * 2"))  # new code, same version
    with pytest.raises(EntityConflictError):
        register_local(entities, blobs, path, "p", "development", "v1")
    assert blobs.list(blobs.uri("code") + "/") == stored
    register_local(entities, blobs, path, "p", "development", "v2")  # the change under a new version ships it
    assert len(blobs.list(blobs.uri("code") + "/")) == 2


def test_an_unnamed_plan_s_errors_name_the_line_that_defines_it(tmp_path):
    package = tmp_path / "badpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "f.py").write_text('''import plait


@plait.workflow
def w(n: int) -> int:
    return n


nightly = plait.LaunchPlan(w, name="badpkg.nightly")
weekly = plait.LaunchPlan(
    w, default_inputs={"n": "seven"})
''')
    with pytest.raises(TypeMismatchError) as bad:
        collect(package)
    assert str(bad.value) == ("launch plan at badpkg/f.py:10 (of workflow 'badpkg.f.w'): default input 'n' "
                              "expects int, got str 'seven'")


def test_labels_must_make_tags():
    with pytest.raises(CompileError, match="launch plan 'daily': label 'team=a': a label is the tag key=value"):
        plait.LaunchPlan(report, name="daily", labels={"team=a": "b"})
    with pytest.raises(CompileError, match="at most 256 characters in all"):
        plait.LaunchPlan(report, name="daily", labels={"team": "x" * 300})
