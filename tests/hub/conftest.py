"""The hub's tests use the server harness (tests/server) and, for the hub page, the console's
fixtures (tests/console/conftest.py: a server, Chromium signed in, screenshots, axe-core),
loaded here under the name ``console_fixtures``."""

import importlib.util
import sys
from pathlib import Path

TESTS = Path(__file__).parents[1]
sys.path.insert(0, str(TESTS / "server"))  # harness.py

_spec = importlib.util.spec_from_file_location("console_fixtures", TESTS / "console" / "conftest.py")
assert _spec is not None and _spec.loader is not None
console_fixtures = importlib.util.module_from_spec(_spec)
sys.modules["console_fixtures"] = console_fixtures
_spec.loader.exec_module(console_fixtures)

browser = console_fixtures.browser
console = console_fixtures.console
page = console_fixtures.page
