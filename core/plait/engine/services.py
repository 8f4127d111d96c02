"""What an engine runs against, built once from configuration and handed to the engine.

The engine reads no environment and no file itself: :func:`build_services` does, from
:class:`plait.model.settings.Settings` (``PLAIT_HOME``, ``PLAIT_DB_URL``, ``PLAIT_BLOB_URL``, ``PLAIT_LINEAGE_URL``)
and ``plait.toml`` (pools and tenants), so a server, a test or ``plait run`` can build one
differently (another store, a shared token manager, a registry of their own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plait.engine.lineage import LineageRecorder
from plait.model.settings import Settings
from plait.plugins.registry import Registry, load_registry
from plait.storage.blobs import BlobStore
from plait.storage.events import EventStore
from plait.storage.lineage import LineageStore
from plait.tokens import token_manager
from plait.tokens.config import TokenConfig


@dataclass
class EngineServices:
    """The store, the blob store, the token manager and the plugin registry of one engine."""

    settings: Settings
    store: EventStore
    blobs: BlobStore
    tokens: Any
    """A :class:`plait.tokens.TokenManager` or a Redis-backed one: the same interface."""
    registry: Registry
    lineage: LineageRecorder
    """Records every attempt's OpenLineage run events in the store (and forwards them)."""


def build_services(settings: Settings | None = None, registry: Registry | None = None,
                   tokens: TokenConfig | None = None) -> EngineServices:
    """Wire the services from configuration: the environment, then ``./plait.toml``."""
    settings = settings or Settings.from_env()
    store = EventStore(settings.db_url)
    return EngineServices(
        settings=settings,
        store=store,
        blobs=BlobStore(settings.blob_url),
        tokens=token_manager(tokens or TokenConfig.load()),
        registry=registry or load_registry(),
        lineage=LineageRecorder(LineageStore(store), settings.lineage_url),
    )
