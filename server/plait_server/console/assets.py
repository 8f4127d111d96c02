"""The browser libraries the console serves, from ``node_modules`` (installed by ``make`` with
``npm ci`` from this folder's lockfile). Only the files named here are served."""

from __future__ import annotations

from pathlib import Path

NODE_MODULES = Path(__file__).parent / "node_modules"

VENDOR = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "dagre.min.js": "@dagrejs/dagre/dist/dagre.min.js",
}
"""The name a page loads (``/static/vendor/<name>``) → the file in ``node_modules``."""


class AssetsMissing(RuntimeError):
    """The npm libraries are not installed next to the console."""


def vendor_file(name: str) -> Path | None:
    """The installed file served as ``name``; None for a name not in :data:`VENDOR`."""
    relative = VENDOR.get(name)
    if relative is None:
        return None
    path = NODE_MODULES / relative
    if not path.is_file():
        raise AssetsMissing(
            f"the console's browser library {relative} is not installed: run `make venv` "
            f"(npm ci in {NODE_MODULES.parent})")
    return path
