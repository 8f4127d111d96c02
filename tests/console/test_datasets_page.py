"""The console's dataset pages: a project's datasets, 100 a page and searched by name prefix,
and one dataset's producers and readers with links to their executions (from the lineage the
server's engine records)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

from console_harness import Console, assert_accessible, shot, sign_in
from harness import wait_for
from plait.model.lineage import AttemptRun, Dataset, RunRecord
from plait.storage.events import EventStore
from plait.storage.lineage import LineageStore

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


def photo(n: int) -> str:
    """A long name, as a content-addressed file's is: a path holding a 128-digit hash, wider than
    the window's room for it in one piece."""
    return f"/srv/blobs/cas/{hashlib.sha512(str(n).encode()).hexdigest()}/photo-{n:03}.png"


def test_datasets_come_100_a_page_are_searched_by_name_and_keep_to_the_width_of_the_window(
        page: Any, console: Console) -> None:
    """130 datasets read by one attempt each (a map's items), recorded in the server's store as its
    engine records them."""
    with console.api() as api:
        api.post("/projects", json={"name": "camera"}).raise_for_status()
    store = EventStore(console.server.db_url)
    lineage = LineageStore(store)
    for n in range(130):
        run = AttemptRun("hunt-1", "bigfoot.hunt", "camera", "development", "bigfoot.detect", "python", "detect", 1, n)
        used = Dataset("file", photo(n), "photo", "file")
        lineage.record(RunRecord(run, "START", 1_700_000_000.0 + n, (used,), ()), [(used, "read")])
    lineage.flush()
    store.engine.dispose()

    page.goto(console.url + "/projects/camera/datasets")
    table = page.get_by_role("table", name="Datasets of project camera")
    names = sorted(photo(n) for n in range(130))
    assert table.locator("tbody th").all_inner_texts() == names[:100]
    one_line = page.evaluate("""() => [...document.querySelectorAll('table.datasets tr > :nth-child(n+3)')].map(cell => {
        const text = document.createRange(); text.selectNodeContents(cell); return text.getClientRects().length; })""")
    assert set(one_line) == {1}, "a count or a time wraps"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the table runs past the window"
    assert_accessible(page)
    shot(page, "datasets-page-1")

    page.get_by_role("link", name="Next 100").click()
    assert table.locator("tbody th").all_inner_texts() == names[100:]
    assert page.get_by_role("link", name="Next 100").count() == 0
    page.get_by_role("link", name="First page").click()
    assert table.locator("tbody th").all_inner_texts() == names[:100]

    prefix = names[42][:len("/srv/blobs/cas/") + 2]
    page.get_by_label("Name starts with").fill(prefix)
    page.get_by_role("button", name="Search").click()
    assert table.locator("tbody th").all_inner_texts() == [name for name in names if name.startswith(prefix)]
    assert page.get_by_label("Name starts with").input_value() == prefix
    page.get_by_label("Name starts with").fill("/nowhere/")
    page.get_by_role("button", name="Search").click()
    assert "No dataset of this project has a name starting with /nowhere/" in page.locator("main").inner_text()
    shot(page, "datasets-search")
