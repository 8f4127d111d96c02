"""Page weight and DOM size of the heavy pages: a map of 100,000 items and a graph of 1,001
nodes. Bytes and elements are deterministic; how fast the graph is laid out is measured by
bench/console_render.py, not asserted here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from console_harness import Console, assert_accessible, shot
from harness import server_env

HERE = Path(__file__).parent
MAP_ITEMS = 100_000
MAX_BYTES = 300 * 1024
MAX_ELEMENTS = 8_000


@pytest.fixture(scope="module")
def heavy(console: Console, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A finished map of 100,000 trivial items run inline into the server's store (about 15 s),
    and the 1,001-node workflow registered."""
    folder = tmp_path_factory.mktemp("heavy")
    shutil.copy(HERE / "exec_flows.py", folder / "exec_flows.py")
    env = server_env(console.server.db_url, console.server.home)
    done = subprocess.run([sys.executable, "-m", "plait.cli", "run", "--inline", "exec_flows.py:fan",
                           "--n", str(MAP_ITEMS)], env=env, cwd=folder, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with console.api() as api:
        rows = api.get("/projects/default/domains/development/executions", params={"workflow": "exec_flows.fan"})
        xid = rows.json()["items"][0]["id"]
    shutil.copy(HERE / "big_flows.py", folder / "big_flows.py")
    console.cli("register", str(folder / "big_flows.py"), "--project", "default", "--domain", "development",
                "--version", "v1")
    return {"map": xid}


class Weighed:
    """The bytes of every response a page loads (document, scripts, styles, data, streams)."""

    def __init__(self, page: Any) -> None:
        self.sizes: dict[str, int] = {}
        page.on("requestfinished", self.add)

    def add(self, request: Any) -> None:
        sizes = request.sizes()
        self.sizes[request.url] = self.sizes.get(request.url, 0) + sizes["responseBodySize"] + \
            sizes["responseHeadersSize"]

    @property
    def total(self) -> int:
        return sum(self.sizes.values())


def elements(page: Any) -> int:
    return int(page.evaluate("document.getElementsByTagName('*').length"))


def test_a_map_of_100000_items_loads_under_300_kb_with_its_first_page_of_items(page: Any, console: Console,
                                                                                heavy: dict[str, str]) -> None:
    weighed = Weighed(page)
    page.goto(f"{console.url}/executions/{heavy['map']}")
    square = page.locator('[data-node="map-square"]')
    assert "✓ 100,000 succeeded" in square.text_content()
    assert "exec_flows.fan (local code" in page.locator("main").inner_text()  # run inline: no registered version
    assert page.get_by_role("link", name="exec_flows.fan").count() == 0  # so no link to one
    assert "100,000 succeeded" in page.locator("svg.timeline").text_content()  # the map's one bar
    square.click()
    items = page.locator("#node-panel table.items tbody tr")
    items.first.wait_for()
    assert items.count() == 100
    page.wait_for_load_state("networkidle")
    assert weighed.total < MAX_BYTES, sorted(weighed.sizes.items(), key=lambda kv: -kv[1])
    assert elements(page) < 2_000
    assert len(page.content()) < MAX_BYTES
    assert_accessible(page)
    shot(page, "execution-map-100000")


def test_a_graph_of_1001_nodes_loads_under_300_kb_and_draws_one_element_group_per_node(
        page: Any, console: Console, heavy: dict[str, str]) -> None:
    weighed = Weighed(page)
    page.goto(f"{console.url}/projects/default/domains/development/workflows/big_flows.thousand")
    page.locator(".graph[data-ready=true]").wait_for()
    page.wait_for_load_state("networkidle")
    assert page.locator(".graph svg [data-node]").count() == 1001
    assert weighed.total < MAX_BYTES, sorted(weighed.sizes.items(), key=lambda kv: -kv[1])
    assert elements(page) < MAX_ELEMENTS
    shot(page, "workflow-1001-nodes")
