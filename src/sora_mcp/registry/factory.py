"""Which registry store a server uses: the embedded one in SORA_MCP_HOME, or the PostgreSQL
database SORA_MCP_REGISTRY_URL names (shared by every replica of a team's server)."""

from __future__ import annotations

import time
from collections.abc import Callable

from sora_mcp.config import Settings
from sora_mcp.errors import ConfigError
from sora_mcp.registry.interface import RegistryStore
from sora_mcp.registry.store import Registry

_NO_DRIVER = (
    "SORA_MCP_REGISTRY_URL names a PostgreSQL registry but its driver is not installed: "
    "pip install 'sora-mcp[postgres]' (psycopg and psycopg_pool)."
)


def open_registry(settings: Settings, *, now: Callable[[], float] = time.time) -> RegistryStore:
    """Open the registry `settings` point at.

    Raises:
        ConfigError: a PostgreSQL URL is set but the `postgres` extra is not installed.
        RegistryError: the store cannot be opened (see each store's `open`).
    """
    if settings.registry_url is None:
        return Registry.open(settings.registry_dir, now=now)
    try:
        from sora_mcp.registry.postgres import PostgresRegistry
    except ImportError as exc:
        raise ConfigError(_NO_DRIVER) from exc
    return PostgresRegistry.open(settings.registry_url, now=now)


def probe_registry(settings: Settings) -> tuple[bool, str] | None:
    """For `sora-mcp doctor`: whether the PostgreSQL registry `settings` name can be opened, and
    what opening it would do — without changing it. None for the embedded store (its folder is
    checked like the others).

    Raises:
        ConfigError: a PostgreSQL URL is set but the `postgres` extra is not installed.
    """
    if settings.registry_url is None:
        return None
    try:
        from sora_mcp.registry.postgres import probe
    except ImportError as exc:
        raise ConfigError(_NO_DRIVER) from exc
    return probe(settings.registry_url)
