"""Token configuration: pools, capacities, rates, tenant weights and caps (plait.toml, environment)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plait.model.errors import PlaitError


class TokenRequestError(PlaitError):
    """A request that can never be granted (more tokens than the pool or the tenant's cap)."""


@dataclass(frozen=True)
class PoolConfig:
    name: str
    capacity: int
    rate: float | None = None
    """Acquisitions per second (a token bucket holding up to ``capacity``), or unlimited."""


@dataclass
class TokenConfig:
    """Pools, tenant weights and caps, from plait.toml, [tool.plait] or the environment."""

    pools: dict[str, PoolConfig] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    caps: dict[str, dict[str, int]] = field(default_factory=dict)
    """tenant -> pool -> most tokens it may hold."""
    default_capacity: int = 16
    url: str | None = None
    """Where tokens live: None for this process, ``redis://host:port/db`` to share them."""
    lease_seconds: float = 30.0
    """How long a shared lease outlives its engine's last renewal (Redis only)."""

    def pool(self, name: str) -> PoolConfig:
        return self.pools.get(name) or PoolConfig(name, self.default_capacity)

    @classmethod
    def load(cls, directory: str | Path = ".") -> TokenConfig:
        """Read ``plait.toml`` (or ``[tool.plait]`` of ``pyproject.toml``), then the environment.

        ``PLAIT_POOLS="snowflake:acme=4,bigquery:p=10/2.5"`` sets capacities (and a rate after
        ``/``); ``PLAIT_TENANT_WEIGHTS="analytics/prod=2"`` sets weights.
        """
        root = Path(directory)
        data: dict[str, Any] = {}
        if (root / "plait.toml").is_file():
            data = tomllib.loads((root / "plait.toml").read_text())
        elif (root / "pyproject.toml").is_file():
            data = tomllib.loads((root / "pyproject.toml").read_text()).get("tool", {}).get("plait", {})
        config = cls(default_capacity=int(data.get("default_pool_capacity", 16)),
                     url=os.environ.get("PLAIT_TOKENS_URL") or data.get("tokens_url"),
                     lease_seconds=float(os.environ.get("PLAIT_TOKEN_LEASE_SECONDS")
                                         or data.get("token_lease_seconds", 30.0)))
        try:
            for name, spec in data.get("pools", {}).items():
                config.pools[name] = PoolConfig(name, int(spec["capacity"]), _rate(spec.get("rate")))
            for tenant, spec in data.get("tenants", {}).items():
                config.weights[tenant] = float(spec.get("weight", 1.0))
                config.caps[tenant] = {p: int(c) for p, c in spec.get("caps", {}).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise PlaitError(f"invalid [pools] or [tenants] in {root}: {exc!r}; expected for example "
                             '[pools."snowflake:acme"] capacity = 4, [tenants."team/prod"] weight = 2') from None
        for item in _env_list("PLAIT_POOLS"):
            name, _, setting = item.rpartition("=")
            capacity, _, rate = setting.partition("/")
            config.pools[name] = PoolConfig(name, int(capacity), _rate(rate or None))
        for item in _env_list("PLAIT_TENANT_WEIGHTS"):
            tenant, _, text = item.rpartition("=")
            config.weights[tenant] = float(text)
        for name, pool in config.pools.items():
            if pool.capacity < 1:
                raise PlaitError(f"pool {name!r} has capacity {pool.capacity}; it must be at least 1")
        for tenant, value in config.weights.items():
            if value <= 0:
                raise PlaitError(f"tenant {tenant!r} has weight {value}; it must be above 0")
        return config


def _rate(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def _env_list(name: str) -> list[str]:
    try:
        return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]
    except ValueError as exc:  # pragma: no cover - defensive
        raise PlaitError(f"{name} is malformed: {exc}") from None

