"""The console's fixtures, from console_harness.py (where test modules import helpers from)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # console_harness.py

from console_harness import *  # noqa: E402,F401,F403  (older test modules still import from here)
from console_harness import browser, console, page  # noqa: E402,F401
