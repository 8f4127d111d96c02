"""The execution list and one execution's page, in Chromium against a real server whose engine
runs what the command line launched: live phases without reloading, a failed node's log read
inline, abort from the button, filters, map items, sub-workflows, data frames and files, and
what a viewer and a stranger may see."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from console_harness import Console, assert_accessible, shot, sign_in
from harness import wait_for
from plait.storage.events import EventStore, events

FLOWS = Path(__file__).with_name("exec_flows.py")
LIST = "/projects/default/domains/development/executions"
ENDED = ("succeeded", "failed", "timed_out", "aborted")


@pytest.fixture(scope="module")
def flows(console: Console, tmp_path_factory: pytest.TempPathFactory) -> Console:
    """exec_flows.py registered in default/development from a folder since removed."""
    console.register_copy(FLOWS, tmp_path_factory.mktemp("source"))
    return console


def launch(console: Console, workflow: str, *inputs: str) -> str:
    done = console.cli("run", "--remote", f"exec_flows.{workflow}", "--project", "default", "--domain",
                       "development", *inputs)
    return done.stdout.split()[0]


def phase_of(console: Console, xid: str) -> str:
    with console.api() as api:
        return str(api.get(f"/executions/{xid}").json()["phase"])


def ended(console: Console, xid: str) -> str:
    return str(wait_for(lambda: (lambda p: p if p in ENDED else None)(phase_of(console, xid)),
                        f"execution {xid} to end", timeout=180, servers=[console.server]))


def node(page: Any, name: str) -> Any:
    return page.locator(f'.graph svg [data-node="{name}"]').first


def wait_node_phase(page: Any, name: str, phase: str) -> None:
    page.wait_for_function(
        "([n, p]) => { const e = document.querySelector(`.graph svg [data-node=\"${n}\"]`);"
        " return e && e.classList.contains('phase-' + p); }", arg=[name, phase], timeout=120_000)


def test_nodes_turn_from_running_to_succeeded_while_the_page_stays_loaded(page: Any, flows: Console,
                                                                         tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    xid = launch(flows, "gated", "--a", "1", "--gate", str(gate))
    page.goto(f"{flows.url}/executions/{xid}")
    page.evaluate("window.stillTheSamePage = true")
    wait_node_phase(page, "wait", "running")
    assert "running" in node(page, "wait").get_attribute("aria-label")
    assert "… not started" in node(page, "finish").get_attribute("aria-label")
    assert_accessible(page)
    shot(page, "execution-running")

    gate.write_text("open")
    wait_node_phase(page, "finish", "succeeded")
    page.wait_for_function("() => document.getElementById('execution-phase').textContent === 'succeeded'")
    assert page.evaluate("window.stillTheSamePage") is True  # no reload: the event stream did it
    assert "✓ succeeded" in node(page, "wait").text_content()
    page.get_by_role("heading", name="Timeline of attempts").wait_for()
    page.wait_for_selector("svg.timeline rect.tl-bar.phase-succeeded")
    shot(page, "execution-succeeded")


def test_a_node_is_a_keyboard_button_that_opens_its_panel(page: Any, flows: Console, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.write_text("open")
    xid = launch(flows, "gated", "--a", "20", "--gate", str(gate))
    assert ended(flows, xid) == "succeeded"
    page.goto(f"{flows.url}/executions/{xid}")
    button = page.get_by_role("button", name="wait ✓ succeeded, task exec_flows.wait")
    button.focus()
    page.keyboard.press("Enter")
    panel = page.locator("#node-panel")
    panel.get_by_role("heading", name=re.compile("Node wait")).wait_for()
    assert page.evaluate("document.activeElement.textContent").startswith("Node wait")
    assert "42" in panel.get_by_role("region", name="Outputs of wait").inner_text()  # (20 + 1) * 2
    inputs = panel.get_by_role("region", name="Inputs of wait").inner_text()
    assert "21" in inputs and str(gate) in inputs
    literal = panel.locator("pre.literal").first  # a long value wraps at its spaces, not mid-word
    assert literal.evaluate("e => getComputedStyle(e).wordBreak") == "normal"
    assert_accessible(page)


def test_a_failed_nodes_error_and_log_are_read_inline_and_downloaded(page: Any, flows: Console) -> None:
    xid = launch(flows, "broken", "--message", "the reactor is on fire, code 4242")
    assert ended(flows, xid) == "failed"
    page.goto(f"{flows.url}/executions/{xid}")
    node(page, "explode").click()
    panel = page.locator("#node-panel")
    panel.get_by_role("heading", name=re.compile("Node explode")).wait_for()
    assert "the reactor is on fire, code 4242" in panel.locator(".attempt .error").first.inner_text()
    log = panel.locator("pre.log").all_inner_texts()
    assert any("about to fail: the reactor is on fire, code 4242" in t for t in log), log
    href = panel.get_by_role("link", name=re.compile("Download the whole log")).first.get_attribute("href")
    whole = page.request.get(flows.url + href)
    assert whole.status == 200 and "code 4242" in whole.text()
    assert_accessible(page)
    shot(page, "execution-failed-log")

    page.get_by_role("button", name="Recover", exact=True).click()
    page.wait_for_url(re.compile(r"/executions/(?!" + xid + r")[^/]+$"))
    recovered = page.url.rsplit("/", 1)[1]
    with flows.api() as api:
        events = api.get(f"/executions/{recovered}/events").json()
    assert events[0]["data"]["launch"]["recover_of"] == xid, events[0]
    origin = page.locator("main p").filter(has_text="Recovery of")
    assert origin.get_by_role("link", name=xid).get_attribute("href") == f"/executions/{xid}"
    workflow = page.get_by_role("link", name="exec_flows.broken", exact=True)
    assert workflow.get_attribute("href").endswith("/workflows/exec_flows.broken?version=v1")
    assert "version v1" in page.locator("main p").filter(has=workflow).inner_text()
    assert page.request.get(flows.url + workflow.get_attribute("href")).status == 200  # not a dead link

    with flows.api() as api:
        again = api.post(f"/executions/{xid}/relaunch", json={}).json()["execution_id"]
    page.goto(f"{flows.url}/executions/{again}")
    origin = page.locator("main p").filter(has_text="Relaunch of")
    assert origin.get_by_role("link", name=xid).get_attribute("href") == f"/executions/{xid}"


def test_a_log_link_is_a_link_and_a_kept_file_downloads_after_the_role_check(page: Any, flows: Console) -> None:
    """What a task type keeps besides log text (a notebook) is listed as links: one in the
    server's blob store through the console, an https one as is, any other as text."""
    xid = launch(flows, "broken")
    assert ended(flows, xid) == "failed"
    with flows.api() as api:
        attempt = [e for e in api.get(f"/executions/{xid}/events").json()
                   if e["kind"] == "attempt" and e["data"].get("logs")][-1]  # the last attempt's end
    notebook = flows.server.home.resolve() / "blobs" / "kept" / "run.ipynb"
    notebook.parent.mkdir(parents=True, exist_ok=True)
    notebook.write_text('{"cells": []}')
    links = {"notebook": f"file://{notebook}", "report": "https://example.org/report/1", "trace": "s3://bucket/t"}
    store = EventStore(flows.server.db_url)  # the attempt's end as a task type that keeps them records it
    with store.engine.begin() as conn:
        conn.execute(events.update().where(events.c.seq == attempt["seq"]).values(
            data=json.dumps({**attempt["data"], "logs": {**attempt["data"]["logs"], **links}})))
    store.engine.dispose()
    with flows.api() as api:
        parts = api.get(f"/executions/{xid}/logs/explode").json()["parts"]
    assert {p["stream"]: p["kind"] for p in parts}.get("notebook") == "link", (parts, attempt, links)

    page.goto(f"{flows.url}/executions/{xid}")
    node(page, "explode").click()
    panel = page.locator("#node-panel")
    panel.get_by_role("heading", name=re.compile("Node explode")).wait_for()
    kept = panel.get_by_role("link", name=links["notebook"])
    got = page.request.get(flows.url + kept.get_attribute("href"))
    assert got.status == 200 and got.text() == '{"cells": []}'
    assert panel.get_by_role("link", name=links["report"]).get_attribute("href") == links["report"]
    assert panel.get_by_role("link", name=links["trace"]).count() == 0 and links["trace"] in panel.inner_text()
    assert panel.locator("pre.log").count() == 1  # stdout's text alone: no text box for a link
    whole = page.request.get(flows.url + panel.get_by_role("link", name=re.compile("Download the whole log"))
                             .first.get_attribute("href")).text()
    assert "about to fail" in whole and "notebook" not in whole
    assert_accessible(page)
    shot(page, "execution-log-links")


def test_abort_from_the_button_stops_a_running_execution(page: Any, flows: Console, tmp_path: Path) -> None:
    xid = launch(flows, "gated", "--a", "1", "--gate", str(tmp_path / "never"))
    page.goto(f"{flows.url}/executions/{xid}")
    wait_node_phase(page, "wait", "running")
    assert page.get_by_role("button", name="Recover", exact=True).count() == 0
    page.get_by_role("button", name="Abort", exact=True).click()
    page.wait_for_function("() => document.getElementById('execution-phase').textContent === 'aborted'",
                           timeout=120_000)
    assert phase_of(flows, xid) == "aborted"
    page.get_by_role("button", name="Recover", exact=True).wait_for()  # the buttons follow the end, live
    assert page.get_by_role("button", name="Abort", exact=True).count() == 0


def test_the_list_filters_pages_and_keeps_phases_live(page: Any, flows: Console, tmp_path: Path) -> None:
    failed = launch(flows, "broken", "--tag", "team=red")
    gate = tmp_path / "gate"
    running = launch(flows, "gated", "--a", "3", "--gate", str(gate), "--tag", "team=blue")
    page.goto(f"{flows.url}{LIST}?workflow=exec_flows.gated")
    page.evaluate("window.stillTheSamePage = true")
    row = page.get_by_role("row", name=re.compile(running))
    wait_for(lambda: "running" in row.inner_text(), "the row to show running", timeout=120)
    assert page.get_by_role("row", name=re.compile(failed)).count() == 0
    assert_accessible(page)
    boxes = {name: page.get_by_label(name).bounding_box() for name in
             ("Phase", "Workflow", "Tags", "Created after (UTC)", "Created before (UTC)")}
    assert boxes["Phase"]["y"] == boxes["Workflow"]["y"] == boxes["Tags"]["y"]  # one row, one height
    assert boxes["Phase"]["height"] == boxes["Workflow"]["height"] == boxes["Created before (UTC)"]["height"]
    assert boxes["Created after (UTC)"]["y"] == boxes["Created before (UTC)"]["y"]
    assert page.get_by_label("Phase").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 255, 255)"
    filter_box = page.get_by_role("button", name="Filter").bounding_box()
    clear_box = page.get_by_role("link", name="Clear").bounding_box()
    assert filter_box["y"] == clear_box["y"] and filter_box["height"] == clear_box["height"]
    shot(page, "executions-list")
    gate.write_text("open")
    page.wait_for_function("() => [...document.querySelectorAll('#rows tr')].some(r => r.innerText.includes("
                           f"'{running}') && r.innerText.includes('succeeded'))", timeout=120_000)
    assert page.evaluate("window.stillTheSamePage") is True

    ended(flows, failed)
    page.goto(f"{flows.url}{LIST}")
    page.get_by_label("Tags").fill("team=red")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"tag=team%3Dred"))
    ids = page.locator("#rows th[scope=row]").all_inner_texts()
    assert ids == [failed]
    page.goto(f"{flows.url}{LIST}?tag=team%3Dred")  # the API's name, as a link would give it
    assert page.locator("#rows th[scope=row]").all_inner_texts() == [failed]
    assert page.get_by_label("Tags").input_value() == "team=red"
    page.get_by_label("Phase").select_option("succeeded")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("#rows th[scope=row]").count() == 0

    page.goto(f"{flows.url}{LIST}?limit=1")
    first = page.locator("#rows th[scope=row]").all_inner_texts()
    page.get_by_role("link", name="Older").click()
    second = page.locator("#rows th[scope=row]").all_inner_texts()
    assert len(first) == len(second) == 1 and first != second


def test_a_bad_filter_is_named_on_the_page(page: Any, flows: Console) -> None:
    reply = page.goto(f"{flows.url}{LIST}?created_after=2026-01-02T00:00&created_before=2026-01-01T00:00")
    assert reply.status == 400
    assert "must be before created before" in page.get_by_role("alert").inner_text()
    reply = page.goto(f"{flows.url}{LIST}?phase=bogus&created_after=yesterday")
    alert = page.get_by_role("alert").inner_text()
    assert reply.status == 400 and "phase 'bogus'" in alert and "created after 'yesterday'" in alert  # every one


def test_a_map_node_shows_counts_and_pages_its_items_a_hundred_at_a_time(page: Any, flows: Console) -> None:
    xid = launch(flows, "fan", "--n", "250")
    assert ended(flows, xid) == "succeeded"
    page.goto(f"{flows.url}/executions/{xid}")
    square = node(page, "map-square")
    assert "✓ 250 succeeded" in square.text_content()
    bar = page.locator("svg.timeline rect.tl-bar.tl-map")
    assert bar.count() == 1 and float(bar.get_attribute("width")) > 2
    assert "map-square items succeeded" in page.locator("#timeline-desc").text_content()
    assert "250 succeeded" in page.locator("svg.timeline").text_content()
    square.click()
    panel = page.locator("#node-panel")
    items = panel.locator("table.items tbody tr")
    items.first.wait_for()
    assert items.count() == 100 and items.first.locator("th").inner_text() == "0"
    panel.get_by_role("button", name="Next 100").click()
    page.wait_for_function("() => document.querySelector('table.items tbody th').textContent === '100'")
    assert items.count() == 100
    assert_accessible(page)
    shot(page, "execution-map")


def test_a_running_maps_counts_stay_live_without_streaming_its_items(page: Any, flows: Console,
                                                                      tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    xid = launch(flows, "gated_fan", "--n", "300", "--gate", str(gate))
    def holding() -> bool:  # items already run: the map's node sends no event until its end
        with flows.api() as api:
            nodes = api.get(f"/executions/{xid}").json()["nodes"]
        return any(n["node"] == "map-hold" and n["item_counts"].get("running") for n in nodes)

    wait_for(holding, "the map's items to run", timeout=120, servers=[flows.server])
    frames: list[str] = []
    page.on("response", lambda r: frames.append(r.url) if "/live" in r.url else None)
    page.goto(f"{flows.url}/executions/{xid}")
    page.evaluate("window.stillTheSamePage = true")
    wait_node_phase(page, "map-hold", "running")
    Path(f"{gate}-even").write_text("open")  # some items end while the map runs on
    page.wait_for_function("() => { const n = document.querySelector('[data-node=\"map-hold\"]');"
                           " return n.classList.contains('phase-running')"
                           " && n.querySelector('.gcounts').textContent.includes('succeeded'); }", timeout=120_000)
    Path(f"{gate}-odd").write_text("open")
    page.wait_for_function("() => document.querySelector('[data-node=\"map-hold\"]').textContent"
                           ".includes('300 succeeded')", timeout=120_000)
    assert page.evaluate("window.stillTheSamePage") is True
    assert frames and all("/api/" not in f for f in frames)  # the console's stream, not the API's
    with flows.api() as api:
        every = api.get(f"/executions/{xid}/events").json()
    items = sum(1 for e in every if e["kind"] == "item")
    session = {c["name"]: c["value"] for c in page.context.cookies()}["plait_session"]
    with httpx.Client(base_url=flows.url, cookies={"plait_session": session}, timeout=60) as browserlike:
        streamed = browserlike.get(f"/executions/{xid}/live").text
    assert items >= 600 and "event: item\n" not in streamed
    assert 1 <= streamed.count("event: items\n") < 50 and streamed.endswith("\n\n")


def test_a_sub_workflow_expands_into_its_own_nodes(page: Any, flows: Console) -> None:
    xid = launch(flows, "nested")
    assert ended(flows, xid) == "succeeded"
    page.goto(f"{flows.url}/executions/{xid}")
    expand = page.get_by_role("button", name="Expand inner")
    assert expand.get_attribute("aria-expanded") == "false"
    expand.focus()
    page.keyboard.press("Enter")
    inside = page.locator("section.inside")
    inside.get_by_role("heading", name="Inside sub-workflow inner").wait_for()
    assert expand.get_attribute("aria-expanded") == "true"
    assert "succeeded" in inside.locator('[data-node="inner.start"]').get_attribute("aria-label")
    assert_accessible(page)
    shot(page, "execution-nested")


def test_a_dynamic_node_expands_into_the_nodes_it_built_and_they_stay_live(page: Any, flows: Console,
                                                                             tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    xid = launch(flows, "grown", "--n", "3", "--gate", str(gate))
    page.goto(f"{flows.url}/executions/{xid}")
    page.get_by_role("button", name="Expand grow").click()
    inside = page.locator("section.inside")
    inside.get_by_role("heading", name="Inside dynamic node grow").wait_for()
    page.wait_for_function("() => [...document.querySelectorAll('section.inside [data-node]')]"
                           ".some(n => n.classList.contains('phase-running'))", timeout=120_000)
    gate.write_text("open")
    page.wait_for_function("() => { const n = [...document.querySelectorAll('section.inside [data-node]')];"
                           " return n.length === 4 && n.every(e => e.classList.contains('phase-succeeded')); }",
                           timeout=120_000)
    names = sorted(n.get_attribute("data-node") for n in inside.locator("[data-node]").all())
    assert names[0].startswith("grow.") and len(names) == 4, names
    assert_accessible(page)
    shot(page, "execution-dynamic")

    assert ended(flows, xid) == "succeeded"
    page.reload()  # drawn from the store this time, not from the stream
    page.get_by_role("button", name="Expand grow").click()
    page.locator("section.inside .graph[data-ready=true]").wait_for()
    assert sorted(n.get_attribute("data-node") for n in inside.locator("[data-node]").all()) == names


def test_a_data_frame_is_previewed_with_its_schema_and_a_file_downloads(page: Any, flows: Console) -> None:
    xid = launch(flows, "table", "--rows", "50", "--text", "hello file")
    assert ended(flows, xid) == "succeeded"
    page.goto(f"{flows.url}/executions/{xid}")
    node(page, "frame").click()
    panel = page.locator("#node-panel")
    preview = panel.get_by_role("table", name=re.compile("First 20 rows of o0"))
    preview.wait_for()
    assert preview.locator("tbody tr").count() == 20
    assert "hello file 19" in preview.inner_text()
    box = panel.get_by_role("region", name="Preview of o0")
    assert box.evaluate("e => e.scrollHeight <= e.clientHeight")  # all 20 rows show, no inner scroll
    assert "n: int64" in panel.inner_text() and "50 rows" in panel.inner_text()
    link = panel.get_by_role("link", name="Download stamp")
    got = page.request.get(flows.url + link.get_attribute("href"))
    assert got.status == 200 and got.body() == b"hello file"
    assert_accessible(page)
    shot(page, "execution-frame")


def test_a_viewer_sees_no_buttons_and_cannot_post_them(browser: Any, flows: Console, tmp_path: Path) -> None:
    xid = launch(flows, "gated", "--a", "1", "--gate", str(tmp_path / "never"))
    key = flows.member("watcher", "viewer")
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    sign_in(page, flows.url, key)
    page.goto(f"{flows.url}/executions/{xid}")
    wait_node_phase(page, "wait", "running")
    assert page.get_by_role("button", name="Abort", exact=True).count() == 0
    assert page.get_by_role("link", name="Relaunch with other inputs").count() == 0
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    refused = page.request.post(f"{flows.url}/executions/{xid}/abort", form={"csrf_token": token})
    assert refused.status == 403
    assert phase_of(flows, xid) == "running"
    assert_accessible(page)
    context.close()
    with flows.api() as api:
        api.post(f"/executions/{xid}/abort").raise_for_status()


def test_an_execution_of_another_project_is_not_found(browser: Any, flows: Console) -> None:
    xid = launch(flows, "broken")
    with flows.api() as api:
        if api.get("/projects/elsewhere").status_code == 404:
            api.post("/projects", json={"name": "elsewhere"}).raise_for_status()
    key = flows.member("stranger", "admin", project="elsewhere")
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, flows.url, key)
    for path in (f"/executions/{xid}", f"/executions/{xid}/nodes/explode", f"/executions/{xid}/log/explode",
                 f"/executions/{xid}/items/explode", f"/executions/{xid}/counts/explode"):
        reply = page.goto(flows.url + path)
        assert reply.status == 404, path
        assert xid in page.inner_text("body") and "no execution" in page.inner_text("body")
    assert page.request.get(f"{flows.url}/executions/{xid}/value/explode?side=inputs&name=message").status == 404
    context.close()
