"""The console's hub page in Debian's Chromium: bundles with their README and interface, and
"Import and run" leading an editor of another project to the launch form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from console_harness import Console, assert_accessible, shot, sign_in
from harness import wait_for

BIGFOOT = Path(__file__).parents[2] / "examples" / "bigfoot.py"
ENDED = ("succeeded", "failed", "timed_out", "aborted")
LAUNCH = "/projects/team/domains/development/workflows/bigfoot.hunt/launch?launch_plan=hunt&version=1.0.0"


@pytest.fixture(scope="module")
def hub(console: Console, tmp_path_factory: pytest.TempPathFactory) -> Console:
    """bigfoot registered in project default and published as hunt@1.0.0; a project team with a
    editor (runner); launchers and viewers are made by the test that needs them; a bundle whose README holds HTML."""
    console.cli("register", str(BIGFOOT), "--project", "default", "--version", "7")
    console.cli("hub", "publish", "hunt", "--version", "1.0.0", "--project", "default")
    readme = tmp_path_factory.mktemp("readme") / "README.md"
    readme.write_text("# tricky\n\nSays <script>document.title='owned'</script> and "
                      "<img src=x onerror=alert(1)>, with [a link](javascript:alert(1)) and **bold**.\n")
    console.cli("hub", "publish", "hunt", "--name", "tricky", "--version", "0.1.0", "--project", "default",
                "--readme", str(readme))
    with console.api() as api:
        api.post("/projects", json={"name": "team"}).raise_for_status()
    return console


def signed_in(browser: Any, console: Console, key: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    tab = context.new_page()
    sign_in(tab, console.url, key)
    return tab


def test_import_and_run_registers_the_bundle_in_a_project_of_the_editor_and_opens_its_launch_form(
        browser: Any, hub: Console) -> None:
    runner = hub.member("runner", "editor", "team")
    tab = signed_in(browser, hub, runner)
    tab.get_by_role("link", name="Hub").click()
    tab.wait_for_url(hub.url + "/hub")
    assert tab.get_by_role("row", name="hunt").get_by_role("code").inner_text() == \
        "(batch_size: int = 100, photos: int = 2000, threshold: float = 0.8) -> Report"
    assert_accessible(tab)
    shot(tab, "hub")

    tab.get_by_role("link", name="hunt", exact=True).click()
    tab.wait_for_url(hub.url + "/hub/hunt/1.0.0")
    assert tab.get_by_role("row", name="photos").inner_text().split("\t") == ["photos", "int", "2000"]
    assert "Hunting bigfoot in trail-camera photos" in tab.locator("article.readme").inner_text()
    assert tab.get_by_label("Project and domain").locator("option").all_inner_texts() == [
        "team · development", "team · staging", "team · production"]  # default: no role there
    assert_accessible(tab)
    shot(tab, "hub_bundle")

    tab.get_by_role("button", name="Import and run").click()
    tab.wait_for_url(hub.url + LAUNCH)
    shot(tab, "hub_import_launch")
    with hub.api() as api:
        plan = api.get("/projects/team/domains/development/entities/launch_plan/hunt/1.0.0").json()
    assert plan["body"]["workflow"] == "bigfoot.hunt"

    tab.go_back()  # importing again changes nothing and opens the same form
    tab.get_by_role("button", name="Import and run").click()
    tab.wait_for_url(hub.url + LAUNCH)

    tab.get_by_label("photos").fill("200")
    tab.get_by_label("batch_size").fill("50")
    tab.get_by_role("button", name="Launch").click()
    tab.wait_for_url(hub.url + "/executions/*")
    xid = tab.url.rsplit("/", 1)[1]
    with hub.api(runner) as api:
        done = wait_for(lambda: (found := api.get(f"/executions/{xid}").json())["phase"] in ENDED and found,
                        "the imported bundle's execution to end", servers=[hub.server])
    assert done["phase"] == "succeeded", done
    report = done["outputs"]["o0"]
    assert report["photos"] == 200 and report["found"] == report["planted"] > 0
    tab.context.close()


def test_a_readme_shows_its_html_as_text_and_runs_none_of_it(page: Any, hub: Console) -> None:
    page.goto(hub.url + "/hub/tricky/0.1.0")
    readme = page.locator("article.readme")
    assert "<script>document.title='owned'</script>" in readme.inner_text()
    assert readme.locator("script, img").count() == 0
    assert readme.locator("strong").inner_text() == "bold"
    assert readme.get_by_role("link").count() == 0  # a javascript: link is not made a link
    assert page.title() == "tricky 0.1.0 · Hub · plait"
    assert_accessible(page)


@pytest.mark.parametrize("role", ["viewer", "launcher"])
def test_only_an_editor_is_offered_the_import_and_a_forged_one_is_refused(browser: Any, hub: Console,
                                                                          role: str) -> None:
    tab = signed_in(browser, hub, hub.member(f"a-{role}", role, "team"))
    tab.goto(hub.url + "/hub/hunt/1.0.0")
    assert tab.get_by_role("button", name="Import and run").count() == 0
    assert "You may import into no project here" in tab.locator("main").inner_text()
    token = tab.locator('meta[name="csrf-token"]').get_attribute("content")
    answer = tab.request.post(hub.url + "/hub/hunt/1.0.0/import",
                              form={"csrf_token": token, "target": "team/staging"})
    assert answer.status == 403 and "this needs editor" in answer.text()
    with hub.api() as api:
        assert api.get("/projects/team/domains/staging/entities/launch_plan").json() == []
    tab.context.close()
