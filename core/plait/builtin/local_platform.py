"""Registers the ``local`` platform, through the same hook a ``kubernetes`` plugin uses."""

from __future__ import annotations

from collections.abc import Callable

from plait.hookspecs import hookimpl
from plait.platforms.local.platform import LocalPlatform
from plait.plugins.platform import Platform


@hookimpl
def plait_platforms(register: Callable[[Platform], None]) -> None:
    register(LocalPlatform())
