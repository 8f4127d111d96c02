"""Registers the ``kubernetes`` platform (configured from ``PLAIT_K8S_*`` when first used).

The ``kubernetes`` client is imported only when an execution runs there, so plait installs
and imports without it; ``pip install 'plait[kubernetes]'`` adds it.
"""

from __future__ import annotations

from collections.abc import Callable

from plait.hookspecs import hookimpl
from plait.platforms.kubernetes.platform import KubernetesPlatform
from plait.plugins.platform import Platform


@hookimpl
def plait_platforms(register: Callable[[Platform], None]) -> None:
    register(KubernetesPlatform())
