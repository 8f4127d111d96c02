"""The console's dataset pages: a project's datasets, and one dataset's producers and readers
with links to their executions (from the lineage the server's engine records)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from console_harness import Console, assert_accessible, shot, sign_in
from harness import wait_for

FLOWS = Path(__file__).parents[1] / "lineage" / "lineage_flows.py"


def ran_report_flow(console: Console) -> str:
    """lineage_flows registered in project default and report_flow run there to its end."""
    source = console.server.home / "datasets-source"
    source.mkdir(exist_ok=True)
    shutil.copy(FLOWS, source / "lineage_flows.py")
    console.cli("register", str(source / "lineage_flows.py"), "--project", "default", "--domain", "development",
                "--version", "datasets-v1")
    with console.api() as api:
        answer = api.post("/projects/default/domains/development/executions",
                          json={"workflow": "lineage_flows.report_flow", "inputs": {"text": "on the page", "n": 5}})
        assert answer.status_code == 201, answer.text
        xid = str(answer.json()["execution_id"])
        wait_for(lambda: api.get(f"/executions/{xid}").json()["phase"] == "succeeded", f"execution {xid} to succeed",
                 servers=[console.server])
    return xid


def test_a_datasets_page_lists_who_produced_and_who_read_it_with_links_to_the_executions(
        page: Any, console: Console) -> None:
    xid = ran_report_flow(console)
    page.goto(console.url + "/projects/default/datasets")
    rows = page.get_by_role("row").filter(has_text="report.txt")
    assert rows.count() == 1 and "1 attempt" in rows.inner_text()
    assert page.get_by_role("row").filter(has_text=".parquet").count() == 1
    assert_accessible(page)
    shot(page, "datasets")

    rows.get_by_role("link").click()
    page.wait_for_url("**/datasets/lineage?**")
    producers = page.get_by_role("table", name="Produced by")
    readers = page.get_by_role("table", name="Read by")
    assert "write_report" in producers.inner_text() and "summarise" in readers.inner_text()
    assert producers.get_by_role("link", name=xid).get_attribute("href") == f"/executions/{xid}"
    assert readers.get_by_role("link", name=xid).get_attribute("href") == f"/executions/{xid}"
    assert_accessible(page)
    shot(page, "dataset")

    producers.get_by_role("link", name=xid).click()
    page.wait_for_url(f"**/executions/{xid}")


def test_a_user_with_no_role_in_the_project_is_told_it_does_not_exist(browser: Any, console: Console) -> None:
    with console.api() as api:
        api.post("/projects", json={"name": "elsewhere"})
    key = console.member("outsider", "viewer", project="elsewhere")
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    tab = context.new_page()
    sign_in(tab, console.url, key)
    answer = tab.goto(console.url + "/projects/default/datasets")
    assert answer is not None and answer.status == 404
    assert "no project 'default'" in tab.content()
    answer = tab.goto(console.url + "/projects/default/datasets/lineage?namespace=file&name=/x")
    assert answer is not None and answer.status == 404
    context.close()
