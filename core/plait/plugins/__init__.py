"""Finding plugins through entry points, lazily, and the registry they fill."""

from plait.plugins.registry import Registry, load_registry

__all__ = ["Registry", "load_registry"]
