"""The pools page with real tokens: a server whose engine runs a task type that holds the one
token of pool ``svc:console`` until a gate file exists, so one execution holds and the next
waits; then each tenant's share of the last hour, plotted and tabled."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_harness import Console, assert_accessible, shot, sign_in
from harness import ServerProcess, bootstrap, wait_for

HERE = Path(__file__).parent
POOL = "svc:console"
SECRET = "hidden-team"


def install_plugin(site: Path) -> None:
    """pool_plugin.py as the plugin of a fake distribution, the way pip installs one."""
    info = site / "plait_console_pool-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plait-console-pool\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[plait]\nconsole_pool = pool_plugin\n")
    shutil.copy(HERE / "pool_plugin.py", site / "pool_plugin.py")


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """A server with the pooled task type and pool svc:console of capacity 1; gated.py
    registered in project default and in hidden-team."""
    home = tmp_path_factory.mktemp("pools")
    site = home / "site"
    install_plugin(site)
    path = os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PYTHONPATH", path)  # the command line registering the flows needs the task type too
        db_url = f"sqlite:///{home / 'server.db'}"
        key = bootstrap(db_url, home)
        with ServerProcess(db_url, home, engines=1, env={"PYTHONPATH": path, "PLAIT_POOLS": f"{POOL}=1"}) as server:
            console = Console(server, key)
            with console.api() as api:
                api.post("/projects", json={"name": SECRET}).raise_for_status()
            source = home / "source"
            source.mkdir()
            shutil.copy(HERE / "pool_flows.py", source / "pool_flows.py")
            for project in ("default", SECRET):
                console.cli("register", str(source / "pool_flows.py"), "--project", project, "--domain",
                            "development", "--version", "v1")
            shutil.rmtree(source)
            yield console


def launch(console: Console, project: str, gate: Path) -> str:
    with console.api() as api:
        made = api.post(f"/projects/{project}/domains/development/executions",
                        json={"workflow": "pool_flows.gated", "inputs": {"gate": str(gate)}})
        made.raise_for_status()
        return str(made.json()["execution_id"])


def pool(console: Console) -> dict[str, Any]:
    with console.api() as api:
        return next(p for p in api.get("/pools").json()["pools"] if p["name"] == POOL)


def phase(console: Console, xid: str) -> str:
    with console.api() as api:
        return str(api.get(f"/executions/{xid}").json()["phase"])


def cells(page: Any, table: Any) -> list[list[str]]:
    return [row.locator("td, th").all_inner_texts() for row in table.locator("tbody tr").all()]


def test_the_page_names_who_holds_and_who_waits_and_plots_each_tenants_share(
        page: Any, browser: Any, console: Console, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    holder = launch(console, SECRET, gate)
    wait_for(lambda: pool(console)["holders"], "the first execution to hold the token", servers=[console.server])
    waiter = launch(console, "default", gate)
    wait_for(lambda: pool(console)["waiters"], "the second execution to wait", servers=[console.server])

    page.goto(console.url + "/pools")
    section = page.get_by_role("region", name=POOL)
    assert "capacity 1" in section.locator(".facts").inner_text()
    holding = section.get_by_role("table", name=f"Who holds tokens of {POOL}")
    assert cells(page, holding)[0][:4] == [f"{SECRET}/development", holder, "hold", "1"]
    waiting = section.get_by_role("table", name=f"Who waits for tokens of {POOL}")
    row = cells(page, waiting)[0]
    assert (row[0], row[1].split()[0], row[2], row[3]) == ("default/development", "1", waiter, "hold")
    assert section.get_by_role("link", name=holder).get_attribute("href") == f"/executions/{holder}"
    assert_accessible(page)
    shot(page, "pools-held")

    key = console.member("pool-viewer", "viewer")  # a role in default only
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    viewer = context.new_page()
    sign_in(viewer, console.url, key)
    viewer.goto(console.url + "/pools")
    section = viewer.get_by_role("region", name=POOL)
    seen = cells(viewer, section.get_by_role("table", name=f"Who holds tokens of {POOL}"))
    assert seen[0][:4] == ["another project", "—", "—", "1"]  # counted, never named
    assert SECRET not in viewer.locator("main").inner_text() and holder not in viewer.content()
    assert cells(viewer, section.get_by_role("table", name=f"Who waits for tokens of {POOL}"))[0][2] == waiter
    shot(viewer, "pools-viewer")

    gate.touch()
    wait_for(lambda: phase(console, waiter) == "succeeded" and phase(console, holder) == "succeeded",
             "both executions to succeed", servers=[console.server])
    page.goto(console.url + "/pools")
    section = page.get_by_role("region", name=POOL)
    assert "No one holds a token now." in section.inner_text() and "No one waits." in section.inner_text()
    plot = section.get_by_role("img", name="Each tenant's share over the last hour")
    assert plot.locator("rect.segment").count() >= 2  # one bar segment at least per tenant
    legend = section.locator("ul.legend").inner_text()
    assert "default/development" in legend and f"{SECRET}/development" in legend
    data = section.get_by_role("table", name=f"The plot's data: tokens of {POOL} held on average per tenant")
    rows = {r[0]: r for r in cells(page, data)}
    assert set(rows) == {"default/development", f"{SECRET}/development"}
    assert float(rows[f"{SECRET}/development"][2]) > 1  # held while the page was read twice
    assert sum(float(r[1].rstrip("%")) for r in rows.values()) == pytest.approx(100, abs=1)
    assert_accessible(page)
    shot(page, "pools-share")

    viewer.goto(console.url + "/pools")
    legend = viewer.get_by_role("region", name=POOL).locator("ul.legend").inner_text()
    assert "another project" in legend and SECRET not in legend
    context.close()


def test_an_attempt_that_waited_for_tokens_says_how_long_and_on_which_pool(page: Any, console: Console,
                                                                           tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    holder = launch(console, SECRET, gate)
    wait_for(lambda: pool(console)["holders"], "the first execution to hold the token", servers=[console.server])
    waiter = launch(console, "default", gate)
    wait_for(lambda: pool(console)["waiters"], "the second execution to wait", servers=[console.server])
    page.wait_for_timeout(1500)  # the waiter waits a while; the panel says for how long
    gate.touch()
    wait_for(lambda: phase(console, waiter) == "succeeded" and phase(console, holder) == "succeeded",
             "both executions to succeed", servers=[console.server])
    page.goto(f"{console.url}/executions/{waiter}/nodes/hold")
    heading = page.locator("h4", has_text="Attempt 1").inner_text()
    waited = float(heading.split("waited ")[1].split("s for tokens")[0])
    assert waited >= 1.0 and f"pools {POOL}" in heading
