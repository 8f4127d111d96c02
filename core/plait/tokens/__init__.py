"""Tenant tokens: fair sharing of rate-limited services, enforced by the core for every plugin."""

from __future__ import annotations

from typing import Any

from plait.model.errors import PlaitError
from plait.tokens.allocator import Allocator, jain_index
from plait.tokens.config import PoolConfig, TokenConfig, TokenRequestError
from plait.tokens.manager import TokenManager

__all__ = ["Allocator", "PoolConfig", "TokenConfig", "TokenManager", "TokenRequestError", "jain_index",
           "token_manager"]


def token_manager(config: TokenConfig) -> Any:
    """The backend ``config`` names: in-process by default, Redis for ``redis://`` URLs."""
    if config.url:
        if not config.url.startswith(("redis://", "rediss://", "unix://")):
            raise PlaitError(f"tokens_url {config.url!r} is not supported; use redis://host:port/db")
        from plait.tokens.redis import RedisTokenManager

        return RedisTokenManager(config.url, config, lease_seconds=config.lease_seconds)
    return TokenManager(config)

