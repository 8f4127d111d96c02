"""The launch form: drawn from a registered workflow's typed interface, read as the command line
reads inputs, launching (and relaunching with edits) through the API's own service calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from console_harness import Console, assert_accessible, shot, sign_in
from harness import wait_for

FLOWS = Path(__file__).parent / "form_flows.py"
BIGFOOT = Path(__file__).parents[2] / "examples" / "bigfoot.py"
WORKFLOW = "form_flows.every_kind"
FORM = f"/projects/default/domains/development/workflows/{WORKFLOW}/launch"
ENDED = ("succeeded", "failed", "timed_out", "aborted")


@pytest.fixture(scope="module")
def registered(console: Console, tmp_path_factory: pytest.TempPathFactory) -> Console:
    """form_flows.py and bigfoot.py registered in default/development, from folders since removed
    (the engine runs them from their code archives)."""
    for source in (FLOWS, BIGFOOT):
        console.register_copy(source, tmp_path_factory.mktemp("source"))
    return console


def execution(console: Console, xid: str) -> dict[str, Any]:
    with console.api() as api:
        found = api.get(f"/executions/{xid}")
        found.raise_for_status()
        return dict(found.json())


def ended(console: Console, xid: str) -> dict[str, Any]:
    return wait_for(lambda: (lambda e: e if e["phase"] in ENDED else None)(execution(console, xid)),
                    f"execution {xid} to end", timeout=180, servers=[console.server])


def fill_good_values(page: Any, data: Path, fixed: tuple[str, ...] = ()) -> None:
    page.get_by_label("count", exact=True).fill("12")
    if "ratio" not in fixed:
        page.get_by_label("ratio", exact=True).fill("0.25")
    page.get_by_label("name", exact=True).fill("Ada <b>Lovelace</b>")
    page.get_by_label("loud", exact=True).check()
    page.get_by_label("day", exact=True).fill("2026-03-04")
    page.get_by_label("at", exact=True).fill("2026-03-04T05:06:07+00:00")
    page.get_by_label("colour", exact=True).select_option("blue")
    page.get_by_label("sizes", exact=True).fill("1\n\n2\n3\n")
    page.get_by_role("group", name="data").get_by_label("Upload a file").set_input_files(str(data))


def launched_id(page: Any, console: Console) -> str:
    page.wait_for_url(console.url + "/executions/*")
    return str(page.url.rsplit("/", 1)[1])


def test_every_input_kind_gets_a_labelled_field_of_its_own(page: Any, registered: Console) -> None:
    page.goto(registered.url + FORM)
    assert page.get_by_role("heading", name=f"Launch {WORKFLOW}").is_visible()
    for name in ("count", "ratio", "name", "at"):
        assert page.get_by_label(name, exact=True).get_attribute("type") == "text"
    assert page.get_by_label("count", exact=True).get_attribute("inputmode") == "numeric"
    assert page.get_by_role("checkbox", name="loud").is_visible()
    assert page.get_by_label("day", exact=True).get_attribute("type") == "date"
    colours = page.get_by_role("combobox", name="colour").locator("option").all_inner_texts()
    assert colours == ["(choose one)", "red", "green", "blue"]  # no default: nothing chosen for the user
    assert page.get_by_role("textbox", name="sizes").evaluate("e => e.tagName") == "TEXTAREA"
    data = page.get_by_role("group", name="data")
    assert data.get_by_label("Upload a file").get_attribute("type") == "file"
    assert data.get_by_label("or its URI").is_visible()
    assert "optional" in page.locator("#in-note-hint").inner_text()
    assert "required" in page.locator("#in-count-hint").inner_text()
    assert page.get_by_role("button", name="Launch").is_visible()
    assert_accessible(page)
    shot(page, "launch-form")


def test_a_bad_value_is_shown_beside_its_field_and_every_value_is_kept(page: Any, registered: Console,
                                                                        tmp_path: Path) -> None:
    data = tmp_path / "notes.txt"
    data.write_text("field notes")
    page.goto(registered.url + FORM)
    fill_good_values(page, data)
    page.get_by_label("count", exact=True).fill("twelve")
    page.get_by_label("sizes", exact=True).fill("1\nlots")
    page.get_by_role("button", name="Launch").click()
    page.wait_for_load_state()
    assert page.url == registered.url + FORM  # not launched
    count_error = page.locator("#in-count-error").inner_text()
    assert "cannot read 'twelve' as int" in count_error  # the command line's own words
    assert "line 2" in page.locator("#in-sizes-error").inner_text()
    assert page.get_by_label("count", exact=True).get_attribute("aria-invalid") == "true"
    assert "in-count-error" in (page.get_by_label("count", exact=True).get_attribute("aria-describedby") or "")
    assert page.get_by_label("count", exact=True).evaluate("e => e === document.activeElement")
    assert page.locator(".field-error").count() == 2
    assert page.get_by_label("name", exact=True).input_value() == "Ada <b>Lovelace</b>"
    assert page.get_by_label("ratio", exact=True).input_value() == "0.25"
    assert page.get_by_label("loud", exact=True).is_checked()
    assert page.get_by_label("colour", exact=True).input_value() == "blue"
    uri = page.get_by_role("group", name="data").get_by_label("or its URI").input_value()
    assert uri.endswith("/notes.txt") and "://" in uri  # uploaded once, kept as its URI
    assert_accessible(page)
    shot(page, "launch-form-error")


def test_good_values_launch_and_the_execution_has_what_was_typed_and_uploaded(
        page: Any, registered: Console, tmp_path: Path) -> None:
    data = tmp_path / "notes.txt"
    data.write_text("field notes from the upload")
    page.goto(registered.url + FORM)
    fill_good_values(page, data)
    page.get_by_role("button", name="Launch").click()
    xid = launched_id(page, registered)
    done = ended(registered, xid)
    assert done["phase"] == "succeeded", done["error"]
    inputs = done["inputs"]
    assert {k: inputs[k] for k in ("count", "ratio", "name", "loud", "day", "colour", "sizes", "note")} == {
        "count": 12, "ratio": 0.25, "name": "Ada <b>Lovelace</b>", "loud": True, "day": "2026-03-04",
        "colour": "blue", "sizes": [1, 2, 3], "note": None}
    assert inputs["at"].startswith("2026-03-04T05:06:07")
    assert inputs["data"]["uri"].startswith("file://" + str(registered.server.home / "blobs"))
    assert '"data": "field notes from the upload"' in done["outputs"]["o0"]
    row = execution(registered, xid)["execution"]
    assert row["launched_by"] == "admin"
    assert row["launch_plan"] == "form_flows.every_kind"  # as `plait run --remote`: the workflow's own plan


def test_a_launch_plans_defaults_are_filled_in_and_its_fixed_inputs_shown_read_only(
        page: Any, registered: Console, tmp_path: Path) -> None:
    data = tmp_path / "plan.txt"
    data.write_text("planned")
    page.goto(registered.url + FORM)
    page.get_by_role("link", name="launch plan weekly").click()
    page.wait_for_url("**launch_plan=weekly")
    assert page.get_by_label("count", exact=True).input_value() == "7"
    assert page.get_by_label("colour", exact=True).input_value() == "green"
    ratio = page.get_by_label("ratio", exact=True)
    assert ratio.input_value() == "0.5" and ratio.get_attribute("readonly") is not None
    assert ratio.get_attribute("name") is None  # never sent: a launch cannot change it
    assert "fixed by launch plan weekly" in page.locator("#in-ratio-hint").inner_text()
    assert_accessible(page)
    shot(page, "launch-form-plan")
    fill_good_values(page, data, fixed=("ratio",))
    page.get_by_label("count", exact=True).fill("")  # empty: the plan's default
    page.get_by_role("button", name="Launch").click()
    done = ended(registered, launched_id(page, registered))
    assert done["phase"] == "succeeded", done["error"]
    assert (done["inputs"]["count"], done["inputs"]["ratio"]) == (7, 0.5)
    assert done["execution"]["launch_plan"] == "weekly"


def test_bigfoot_launches_from_the_form_by_keyboard(page: Any, registered: Console) -> None:
    page.goto(registered.url + "/projects/default/domains/development/workflows/bigfoot.hunt/launch")
    assert page.get_by_label("photos", exact=True).input_value() == "2000"  # the workflow's default
    assert page.get_by_label("threshold", exact=True).input_value() == "0.8"
    assert_accessible(page)
    shot(page, "launch-bigfoot")
    page.get_by_label("batch_size", exact=True).focus()  # then the keyboard only: fields, then the button
    for text in ("40", "120"):
        page.keyboard.press("Control+A")
        page.keyboard.type(text)
        page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Launch"
    page.keyboard.press("Enter")
    done = ended(registered, launched_id(page, registered))
    assert done["phase"] == "succeeded", done["error"]
    assert (done["inputs"]["photos"], done["inputs"]["batch_size"], done["inputs"]["threshold"]) == (120, 40, 0.8)
    assert done["outputs"]["o0"]["photos"] == 120


def test_relaunch_opens_the_form_with_the_executions_inputs_and_runs_the_edit(
        page: Any, registered: Console, tmp_path: Path) -> None:
    data = tmp_path / "first.txt"
    data.write_text("first")
    with registered.api() as api:
        first = api.post("/projects/default/domains/development/executions", json={
            "workflow": WORKFLOW, "inputs": {
                "count": 1, "ratio": 1.5, "name": "first", "loud": False, "day": "2026-01-01",
                "at": "2026-01-01T00:00:00+00:00", "colour": "red", "sizes": [4, 5],
                "data": {"uri": data.as_uri()}, "note": "kept"}})
        assert first.status_code == 201, first.text
    xid = first.json()["execution_id"]
    page.goto(f"{registered.url}/executions/{xid}/relaunch")
    assert page.get_by_role("heading", name=f"Relaunch {xid}").is_visible()
    assert page.get_by_label("name", exact=True).input_value() == "first"
    assert page.get_by_label("sizes", exact=True).input_value() == "4\n5"
    assert page.get_by_label("note", exact=True).input_value() == "kept"
    assert not page.get_by_label("loud", exact=True).is_checked()
    assert page.get_by_role("group", name="data").get_by_label("or its URI").input_value() == data.as_uri()
    assert_accessible(page)
    shot(page, "relaunch-form")
    page.get_by_label("name", exact=True).fill("second")
    page.get_by_role("button", name="Relaunch").click()
    again = launched_id(page, registered)
    assert again != xid
    done = ended(registered, again)
    assert done["phase"] == "succeeded", done["error"]
    assert done["inputs"]["name"] == "second"
    assert {k: v for k, v in done["inputs"].items() if k != "name"} == {
        k: v for k, v in execution(registered, xid)["inputs"].items() if k != "name"}
    with registered.api() as api:
        queued = api.get(f"/executions/{again}/events").json()[0]
    assert queued["data"]["launch"]["relaunch_of"] == xid  # recorded as the API's relaunch records it


def test_a_viewer_sees_no_launch_button_and_its_post_is_refused(browser: Any, registered: Console) -> None:
    key = registered.member("form-viewer", "viewer")
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    sign_in(page, registered.url, key)
    page.goto(registered.url + FORM)
    assert page.get_by_role("button", name="Launch").count() == 0
    assert "launching needs the launcher role" in page.locator("#no-launch").inner_text()
    assert_accessible(page)
    shot(page, "launch-form-viewer")
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    session = {c["name"]: c["value"] for c in context.cookies()}["plait_session"]
    before = executions_of(registered)
    with httpx.Client(base_url=registered.url, cookies={"plait_session": session}) as viewer:
        refused = viewer.post(FORM, data={"csrf_token": token, "count": "1"})
    assert refused.status_code == 403
    assert executions_of(registered) == before
    context.close()


def executions_of(console: Console) -> int:
    with console.api() as api:
        return len(api.get("/projects/default/domains/development/executions", params={"limit": 500}).json()["items"])


def test_a_forged_post_without_the_csrf_token_is_refused(page: Any, registered: Console, tmp_path: Path) -> None:
    session = {c["name"]: c["value"] for c in page.context.cookies()}["plait_session"]
    before = executions_of(registered)
    form = {"count": "1", "ratio": "1", "name": "forged", "loud": "true", "day": "2026-01-01",
            "at": "2026-01-01T00:00:00", "colour": "red", "sizes": "1", "data": "file:///etc/hostname"}
    with httpx.Client(base_url=registered.url, cookies={"plait_session": session}) as forger:
        assert forger.post(FORM, data=form).status_code == 403
        assert forger.post(FORM, data={**form, "csrf_token": "0" * 64}).status_code == 403
    assert executions_of(registered) == before
