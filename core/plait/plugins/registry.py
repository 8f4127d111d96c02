"""Finding and loading plugins through the ``plait`` entry-point group.

Nothing is loaded at import time: :func:`load_registry` builds the plugin manager on first
use. ``PLAIT_PLUGINS`` (comma-separated entry-point names) restricts which plugins load,
``PLAIT_TRACE_PLUGINS=1`` prints each one as it loads. A plugin that fails to import is
reported by name while the others load.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy
from pydantic import BaseModel

from plait import hookspecs
from plait.model.errors import (
    PluginConflictError,
    PluginError,
    UnknownPlatformError,
    UnknownTaskTypeError,
)
from plait.plugins.platform import Platform
from plait.plugins.tasktype import TaskType

if TYPE_CHECKING:
    from plait.types.engine import TypeTransformer

ENTRY_POINT_GROUP = "plait"
_NAME = re.compile(r"^[a-z][a-z0-9_.-]*$")
_HOOKS = ("submit", "poll", "abort", "cleanup")


@dataclass(frozen=True)
class PluginInfo:
    """One entry point of the ``plait`` group and where it comes from."""

    name: str
    module: str
    distribution: str
    version: str


@dataclass
class Registry:
    """The loaded plugins: task types and platforms by name, value types, and plugins that failed."""

    plugins: list[PluginInfo] = field(default_factory=list)
    task_types: dict[str, TaskType] = field(default_factory=dict)
    task_type_owner: dict[str, PluginInfo] = field(default_factory=dict)
    transformers: list[TypeTransformer] = field(default_factory=list)
    platforms: dict[str, Platform] = field(default_factory=dict)
    platform_owner: dict[str, PluginInfo] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def platform(self, name: str) -> Platform:
        """Return the platform ``name`` or raise a message naming the installed ones."""
        try:
            return self.platforms[name]
        except KeyError:
            known = ", ".join(sorted(self.platforms)) or "none"
            failed = f"; plugin {name!r} failed to load: {self.failed[name]}" if name in self.failed else ""
            raise UnknownPlatformError(
                f"unknown platform {name!r}. Installed platforms: {known}. To use it, install the plugin "
                f"that registers it (pip install plait-{name}){failed}") from None

    def close(self) -> None:
        """Release what the task types and platforms hold for this process (pools, clients)."""
        for task_type in self.task_types.values():
            task_type.close()
        for platform in self.platforms.values():
            platform.close()

    def task_type(self, name: str, *, needed_by: str = "") -> TaskType:
        """Return the task type ``name`` or raise a message saying how to get it."""
        try:
            return self.task_types[name]
        except KeyError:
            who = f" (needed by task {needed_by!r})" if needed_by else ""
            known = ", ".join(sorted(self.task_types)) or "none"
            hint = f"pip install plait-{name}" if "." not in name else "install its plugin"
            failed = f"; plugin {name!r} failed to load: {self.failed[name]}" if name in self.failed else ""
            raise UnknownTaskTypeError(
                f"unknown task type {name!r}{who}. Installed task types: {known}. "
                f"To use it, {hint}{failed}"
            ) from None


def _distribution_of(ep: importlib.metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "?", "?"
    metadata = dist.metadata  # parsed from its file on every access: read it once
    return metadata["Name"], metadata["Version"]


def _check_task_type(task_type: Any, plugin: PluginInfo) -> TaskType:
    where = f"plugin {plugin.name!r} ({plugin.module})"
    if not isinstance(task_type, TaskType):
        raise PluginError(
            f"{where} registered {task_type!r}, which is not a plait.tasktype.TaskType instance"
        )
    name = getattr(task_type, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise PluginError(
            f"{where} registered a task type with name {name!r}; expected a lower-case name "
            "such as 'spark' (letters, digits, '_', '-', '.')"
        )
    for hook in _HOOKS:
        if getattr(type(task_type), hook) is getattr(TaskType, hook):
            raise PluginError(f"{where}: task type {name!r} does not implement {hook}()")
    model = task_type.config_model
    if model is not None and not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise PluginError(
            f"{where}: task type {name!r} has config_model {model!r}; expected a pydantic model"
        )
    return task_type


def _entry_points() -> list[tuple[importlib.metadata.EntryPoint, tuple[str, str]]]:
    """The entry points to load, each with its distribution's name and version."""
    eps = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    allow = os.environ.get("PLAIT_PLUGINS")
    if allow:
        wanted = {n.strip() for n in allow.split(",") if n.strip()}
        eps = [ep for ep in eps if ep.name in wanted]
    # One module may be installed twice (an editable and a regular copy): load it once.
    seen: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in eps:
        seen.setdefault(ep.name, ep)
    # Built-ins first, then plugins by name: a plugin's types then take precedence over the
    # built-in ones they specialise (a dataclass of its own, say), whatever order pip chose.
    found = [(ep, _distribution_of(ep)) for ep in seen.values()]
    return sorted(found, key=lambda found: (found[1][0] != "plait", found[0].name))


def build_registry(modules: list[tuple[PluginInfo, Any]] | None = None) -> Registry:
    """Load every ``plait`` entry point (or the given modules) and collect what they register."""
    trace = os.environ.get("PLAIT_TRACE_PLUGINS") == "1"
    pm = pluggy.PluginManager("plait")
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    loaded: list[tuple[PluginInfo, Any]] = []
    if modules is None:
        for ep, (dist, version) in _entry_points():
            info = PluginInfo(ep.name, ep.value, dist, version)
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin must not take the others down
                registry.failed[ep.name] = f"{type(exc).__name__}: {exc}"
                print(
                    f"plait: plugin {ep.name!r} from {dist} failed to import and was skipped: "
                    f"{type(exc).__name__}: {exc}",
                    file=sys.stderr,
                )
                continue
            loaded.append((info, module))
    else:
        loaded = modules
    for info, module in loaded:
        if trace:
            print(f"plait: loading plugin {info.name} ({info.module}) from {info.distribution} "
                  f"{info.version}", file=sys.stderr)
        try:
            pm.register(module, name=info.name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginError(f"plugin {info.name!r} ({info.module}) is invalid: {exc}") from exc
        registry.plugins.append(info)
        _collect(pm, module, info, registry)
    return registry


def _collect(pm: pluggy.PluginManager, module: Any, info: PluginInfo, registry: Registry) -> None:
    def register_task_type(task_type: TaskType) -> None:
        task_type = _check_task_type(task_type, info)
        owner = registry.task_type_owner.get(task_type.name)
        if owner is not None:
            raise PluginConflictError(
                f"task type {task_type.name!r} is registered by two plugins: {owner.name!r} "
                f"({owner.distribution}) and {info.name!r} ({info.distribution}). Uninstall one, "
                f"or set PLAIT_PLUGINS to the ones you want"
            )
        registry.task_types[task_type.name] = task_type
        registry.task_type_owner[task_type.name] = info

    def register_type(transformer: TypeTransformer) -> None:
        from plait.types.engine import TypeTransformer

        if not isinstance(transformer, TypeTransformer):
            raise PluginError(
                f"plugin {info.name!r} registered {transformer!r} as a type, which is not a "
                "plait.types.TypeTransformer"
            )
        registry.transformers.append(transformer)

    def register_platform(platform: Platform) -> None:
        name = getattr(platform, "name", None)
        if not isinstance(platform, Platform) or not isinstance(name, str) or not _NAME.match(name):
            raise PluginError(f"plugin {info.name!r} registered {platform!r} as a platform; expected an instance "
                              "of a plait.sdk.Platform subclass with a lower-case name such as 'kubernetes'")
        owner = registry.platform_owner.get(name)
        if owner is not None:
            raise PluginConflictError(
                f"platform {name!r} is registered by two plugins: {owner.name!r} ({owner.distribution}) and "
                f"{info.name!r} ({info.distribution}). Uninstall one, or set PLAIT_PLUGINS to the ones you want")
        registry.platforms[name] = platform
        registry.platform_owner[name] = info

    caller = pm.subset_hook_caller
    others = [p for p in pm.get_plugins() if p is not module]
    caller("plait_task_types", others)(register=register_task_type)
    caller("plait_types", others)(register=register_type)
    caller("plait_platforms", others)(register=register_platform)


_registry: Registry | None = None
_lock = threading.Lock()


def load_registry() -> Registry:
    """Return the process-wide registry, loading plugins on first call."""
    global _registry
    if _registry is None:
        with _lock:
            if _registry is None:
                _registry = build_registry()
                from plait.types.engine import install_transformers

                install_transformers(_registry.transformers)
    return _registry


def warm_up(platform: str, registry: Registry | None = None) -> None:
    """Have ``platform`` start what it runs Python attempts with (see :meth:`Platform.warm_up`)
    in the background; an unknown platform is left for the engine to name."""
    try:
        (registry or load_registry()).platform(platform).warm_up()
    except UnknownPlatformError:
        pass


def reset_registry() -> None:
    """Forget the loaded plugins (tests, or after installing a plugin in-process)."""
    global _registry
    with _lock:
        _registry = None

