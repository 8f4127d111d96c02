"""How a server is run: address, store, blob store, authentication and engine workers."""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass

from plait.model.errors import PlaitError
from plait.model.settings import Settings

AUTH_MODES = ("keys", "none")


class ServerConfigError(PlaitError):
    """A server configuration that must not start (for example, open to the network without auth)."""


@dataclass
class ServerConfig:
    """``auth``: ``keys`` (every request but /health carries an API key) or ``none`` (every
    request acts as the server admin: only on a loopback address, for one person's laptop).
    ``engines``: engine workers run inside the server process (0: only separate ``plait engine``
    processes run executions)."""

    host: str = "127.0.0.1"
    port: int = 8742
    db_url: str = ""
    blob_url: str = ""
    auth: str = "keys"
    engines: int = 1

    @classmethod
    def from_env(cls, **overrides: object) -> ServerConfig:
        settings = Settings.from_env()
        config = cls(
            host=os.environ.get("PLAIT_SERVER_HOST", "127.0.0.1"),
            port=int(os.environ.get("PLAIT_SERVER_PORT", "8742")),
            db_url=settings.db_url, blob_url=settings.blob_url,
            auth=os.environ.get("PLAIT_SERVER_AUTH", "keys"),
            engines=int(os.environ.get("PLAIT_SERVER_ENGINES", "1")),
        )
        for name, value in overrides.items():
            if value is not None:
                setattr(config, name, value)
        return config

    def check(self) -> None:
        """Refuse what must not start: an unknown auth mode, or no auth beyond loopback."""
        if self.auth not in AUTH_MODES:
            raise ServerConfigError(f"PLAIT_SERVER_AUTH is one of {', '.join(AUTH_MODES)}, not {self.auth!r}")
        if self.auth == "none" and not is_loopback(self.host):
            raise ServerConfigError(
                f"refusing to serve {self.host} without authentication: anyone who can reach it could run "
                f"code. Use API keys (PLAIT_SERVER_AUTH=keys, the default), or bind 127.0.0.1")
        if self.engines < 0:
            raise ServerConfigError(f"engine workers are 0 or more, not {self.engines}")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) means this machine only."""
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses)
