"""The plugin contract: every hook a plait plugin can implement.

A plugin is a module listed under the entry-point group ``plait``; it implements some of
these hooks with :data:`plait.hookimpl`. Importing it must register nothing: plait calls the
hooks when it builds its plugin registry (:func:`plait.plugins.load_registry`).

The built-in ``python`` and ``container`` task types and the built-in value types are
registered through exactly these hooks (``plait/builtin/``), so they double as examples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from plait.plugins.platform import Platform
    from plait.plugins.tasktype import TaskType
    from plait.types.engine import TypeTransformer

hookspec = pluggy.HookspecMarker("plait")
hookimpl = pluggy.HookimplMarker("plait")

# ---------------------------------------------------------------------------------------
# Registration: called once, when the registry is built (first compile, run or CLI call).
# ---------------------------------------------------------------------------------------


@hookspec
def plait_task_types(register: Callable[[TaskType], None]) -> None:
    """Register task types by calling ``register(task_type)`` once for each.

    Called once when plait builds its plugin registry. ``task_type`` is an instance of a
    :class:`plait.tasktype.TaskType` subclass with a unique ``name``; registering a name that
    another plugin already registered is a :class:`plait.errors.PluginConflictError` naming
    both plugins. The return value is ignored.
    """


@hookspec
def plait_types(register: Callable[[TypeTransformer], None]) -> None:
    """Register value types by calling ``register(transformer)`` once for each.

    Called once when plait builds its plugin registry, after the built-in types. A
    :class:`plait.types.TypeTransformer` tells plait how to recognise a Python type in a task
    signature, describe it in the compiled spec, and store a value of it (inline as JSON or in
    the blob store). Transformers registered later are consulted first, so a plugin can
    specialise a built-in type. The return value is ignored.
    """


@hookspec
def plait_platforms(register: Callable[[Platform], None]) -> None:
    """Register platforms (where compute runs) by calling ``register(platform)`` once for each.

    Called once when plait builds its plugin registry. ``platform`` is an instance of a
    :class:`plait.sdk.Platform` subclass with a unique lower-case ``name`` (``local``,
    ``kubernetes``); an execution chooses one by that name (``plait run --platform NAME``,
    default ``local``), and compute task types hand it their work through ``ctx.platform``.
    Registering a name another plugin registered is a
    :class:`plait.model.errors.PluginConflictError` naming both. The return value is ignored.
    """
