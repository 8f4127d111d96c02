"""The workflows page and one workflow's page: what is registered, with versions, typed
interface, tasks, launch plans and graph, readable before anything has run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from console_harness import Console, assert_accessible, shot, sign_in

FLOWS = Path(__file__).with_name("exec_flows.py")
WORKFLOWS = "/projects/default/domains/development/workflows"


@pytest.fixture(scope="module")
def flows(console: Console, tmp_path_factory: pytest.TempPathFactory) -> Console:
    """exec_flows.py registered twice (v1, then v2 with another default) and never run."""
    for version, default in (("v1", "the reactor is on fire"), ("v2", "the reactor is fine")):
        text = FLOWS.read_text().replace('"the reactor is on fire"', repr(default))
        console.register_copy(FLOWS, tmp_path_factory.mktemp("source"), version, text)
    return console


def test_the_registered_workflows_tasks_and_plans_are_listed_with_versions(page: Any, flows: Console) -> None:
    page.goto(flows.url + WORKFLOWS)
    workflows = page.get_by_role("table", name=re.compile("^Workflows registered"))
    row = workflows.get_by_role("row", name=re.compile("exec_flows.broken"))
    assert row.get_by_role("link", name="exec_flows.broken version v1").is_visible()
    assert row.get_by_role("link", name="exec_flows.broken version v2").is_visible()
    tasks = page.get_by_role("table", name=re.compile("^Tasks registered")).inner_text()
    assert "exec_flows.explode" in tasks and "exec_flows.square" in tasks
    assert "exec_flows.gated" in page.get_by_role("table", name=re.compile("^Launch plans registered")).inner_text()
    assert_accessible(page)
    shot(page, "workflows")


def test_a_workflow_shows_its_interface_tasks_plans_and_graph_before_it_runs(page: Any, flows: Console) -> None:
    with flows.api() as api:
        runs = api.get("/projects/default/domains/development/executions").json()["items"]
    assert runs == []  # nothing has run: all the page shows comes from the registration
    page.goto(f"{flows.url}{WORKFLOWS}/exec_flows.gated")
    inputs = page.get_by_role("table", name="Inputs")
    assert re.search(r"a\s+int\s+required", inputs.get_by_role("row", name=re.compile("^a ")).inner_text())
    assert "str" in inputs.get_by_role("row", name=re.compile("^gate ")).inner_text()
    assert "int" in page.get_by_role("table", name="Outputs").inner_text()
    tasks = page.get_by_role("table", name="Tasks").inner_text()
    assert all(f"exec_flows.{t}" in tasks for t in ("start", "wait", "finish"))
    assert "v1" in page.get_by_role("region", name="Versions").inner_text()
    assert "exec_flows.gated" in page.get_by_role("region", name="Launch plans").inner_text()
    graph = page.locator(".graph[data-ready=true] svg")
    graph.wait_for()
    names = [n.get_attribute("aria-label") for n in graph.locator("[data-node]").all()]
    assert names == ["start task, task exec_flows.start", "wait task, task exec_flows.wait",
                     "finish task, task exec_flows.finish"]
    assert graph.locator("path").count() == 2  # start → wait → finish
    page.locator('[data-node="start"]').focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.node") == "wait"
    launch = page.get_by_role("link", name="Launch", exact=True)
    assert launch.get_attribute("href").startswith(f"{WORKFLOWS}/exec_flows.gated/launch")
    assert_accessible(page)
    shot(page, "workflow")


def test_each_version_shows_its_own_defaults(page: Any, flows: Console) -> None:
    page.goto(f"{flows.url}{WORKFLOWS}/exec_flows.broken?version=v1")
    assert "the reactor is on fire" in page.get_by_role("table", name="Inputs").inner_text()
    page.get_by_role("link", name="v2").click()
    assert "the reactor is fine" in page.get_by_role("table", name="Inputs").inner_text()
    assert page.get_by_role("link", name="v2").get_attribute("aria-current") == "page"


def test_a_map_and_a_sub_workflow_are_drawn_as_one_node_each(page: Any, flows: Console) -> None:
    page.goto(f"{flows.url}{WORKFLOWS}/exec_flows.fan")
    assert page.locator('[data-node="map-square"]').get_attribute("aria-label").startswith("map-square map")
    page.goto(f"{flows.url}{WORKFLOWS}/exec_flows.nested")
    page.get_by_role("button", name="Expand inner").click()
    page.locator("section.inside .graph[data-ready=true]").wait_for()
    inside = page.locator("section.inside [data-node]")
    assert [n.get_attribute("data-node") for n in inside.all()] == ["inner.start", "inner.finish"]
    assert_accessible(page)


def test_a_workflow_of_a_project_without_a_role_is_not_found(browser: Any, flows: Console) -> None:
    with flows.api() as api:
        api.post("/projects", json={"name": "apart"}).raise_for_status()
    key = flows.member("visitor", "admin", project="apart")
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, flows.url, key)
    for path in (WORKFLOWS, f"{WORKFLOWS}/exec_flows.gated"):
        assert page.goto(flows.url + path).status == 404
        assert "exec_flows" not in page.inner_text("main")
    assert page.goto(f"{flows.url}/projects/apart/domains/development/workflows/nope").status == 404
    context.close()


def test_only_a_launcher_is_offered_the_launch_button(browser: Any, page: Any, flows: Console) -> None:
    page.goto(f"{flows.url}{WORKFLOWS}/exec_flows.gated")
    assert page.get_by_role("link", name="Launch", exact=True).is_visible()
    key = flows.member("onlooker", "viewer")
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    viewer = context.new_page()
    sign_in(viewer, flows.url, key)
    viewer.goto(f"{flows.url}{WORKFLOWS}/exec_flows.gated")
    viewer.get_by_role("heading", name="Workflow exec_flows.gated").wait_for()
    assert viewer.get_by_role("link", name="Launch", exact=True).count() == 0
    context.close()
