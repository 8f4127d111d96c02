"""The hub's tests use the server harness (tests/server) and, for the hub page, the console's
fixtures and helpers (tests/console/console_harness.py: a server, Chromium signed in,
screenshots, axe-core)."""

import sys
from pathlib import Path

TESTS = Path(__file__).parents[1]
sys.path.insert(0, str(TESTS / "server"))  # harness.py
sys.path.insert(0, str(TESTS / "console"))  # console_harness.py

from console_harness import browser, console, page  # noqa: E402,F401
