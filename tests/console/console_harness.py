"""The console's tests: a real ``plait server`` and Debian's Chromium driven by Playwright.

Test modules import what they use from here (``from console_harness import ...``), never from a
``conftest``: several folders have one, and a bare ``conftest`` import gets whichever was
loaded last. tests/console/conftest.py and tests/hub/conftest.py import the fixtures from here.

``console`` is a server (SQLite, one engine worker) with its admin's key, made once per test
module; ``browser`` is Chromium (``/usr/bin/chromium``; ``make test`` installs it), ``page`` a
tab at 1280x720 signed in as the admin through the sign-in form. ``shot(page, name)`` saves a
screenshot under tests/console/artifacts/ (look at them), ``assert_accessible(page)`` runs
axe-core (from the console's npm lockfile) on the page and fails on a serious or critical
violation, listing each.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "server"))  # harness.py

from harness import ServerProcess, bootstrap  # noqa: E402

CHROMIUM = Path(os.environ.get("PLAIT_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).parent / "artifacts"
CONSOLE = Path(__file__).parents[2] / "server" / "plait_server" / "console"
AXE = CONSOLE / "node_modules" / "axe-core" / "axe.min.js"


@dataclass
class Console:
    """A running server for the console's tests, and its admin's key."""

    server: ServerProcess
    admin_key: str

    @property
    def url(self) -> str:
        return self.server.url

    def api(self, key: str | None = None) -> httpx.Client:
        return self.server.client(key or self.admin_key)

    def member(self, user: str, role: str, project: str = "default") -> str:
        """A key of ``user`` (made if new) holding ``role`` in ``project``."""
        with self.api() as api:
            if api.get(f"/users/{user}").status_code == 404:
                api.post("/users", json={"name": user}).raise_for_status()
            api.put(f"/projects/{project}/members/{user}", json={"role": role}).raise_for_status()
            made = api.post(f"/users/{user}/keys", json={"description": "console test"})
            made.raise_for_status()
            return str(made.json()["key"])

    def register_copy(self, source: Path, folder: Path, version: str = "v1", text: str | None = None) -> None:
        """Register ``source`` (or ``text`` under its name) in default/development from ``folder``,
        removed afterwards: the engine then runs it from its code archive, as on a real server."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / source.name).write_text(source.read_text() if text is None else text)
        self.cli("register", str(folder / source.name), "--project", "default", "--domain", "development",
                 "--version", version)
        shutil.rmtree(folder)

    def cli(self, *args: str, key: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``plait ARGS`` against this server, as a user at a terminal would run it."""
        env = {**os.environ, "PLAIT_SERVER": self.url, "PLAIT_API_KEY": key or self.admin_key,
               "PLAIT_HOME": str(self.server.home / "cli")}
        done = subprocess.run([sys.executable, "-m", "plait.cli", *args], env=env, capture_output=True, text=True,
                              timeout=300)
        if check:
            assert done.returncode == 0, f"plait {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    home = tmp_path_factory.mktemp("console")
    db_url = f"sqlite:///{home / 'server.db'}"
    key = bootstrap(db_url, home)
    with ServerProcess(db_url, home, engines=1) as server:
        yield Console(server, key)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Not for the session: Playwright's sync API keeps an event
    loop running in this thread while it is open, and every later test that calls asyncio.run()
    (the engine's, in the same process) would fail."""
    if not CHROMIUM.exists():
        pytest.fail(f"the console's tests need Chromium at {CHROMIUM}: `apt-get install chromium` "
                    f"(make test installs it)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox"])
        yield browser
        browser.close()


def sign_in(page: Any, url: str, key: str) -> None:
    page.goto(url + "/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(url + "/projects")


@pytest.fixture
def page(browser: Any, console: Console) -> Iterator[Any]:
    """A tab at 1280x720, signed in as the server's admin."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    tab = context.new_page()
    sign_in(tab, console.url, console.admin_key)
    yield tab
    context.close()


def shot(page: Any, name: str) -> Path:
    """A full-page screenshot of ``page`` as tests/console/artifacts/NAME.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_accessible(page: Any) -> None:
    """axe-core on the page as it is now: no serious or critical violation."""
    if not AXE.exists():
        pytest.fail(f"axe-core is not installed at {AXE}: run `make venv` (npm ci in {CONSOLE})", pytrace=False)
    page.evaluate(AXE.read_text())
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ["violations"]});
        return r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
            .map(v => `${v.impact} ${v.id}: ${v.help} — ` + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join("; "));
    }""")
    assert not result, f"accessibility violations on {page.url}:\n" + "\n".join(result)
