"""Build the MCP server: one lifespan opens the registry and the HTTP client, tools do the rest.

The backend is reached over HTTP in every case. With the emulator it is the same client code path,
only the transport differs (`httpx2.ASGITransport` into the emulator's Starlette app).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx2
from mcp.server import MCPServer
from mcp.server.request_state import RequestStateSecurity

from sora_mcp import __version__
from sora_mcp.api.profile import PROFILES, BackendProfile
from sora_mcp.batch.session import open_session
from sora_mcp.clock import Clock, SystemClock
from sora_mcp.config import Settings
from sora_mcp.errors import ConfigError
from sora_mcp.server.apps import studio_apps
from sora_mcp.server.instructions import instructions
from sora_mcp.server.prompts import register_prompts
from sora_mcp.server.protocol import SoraMCPServer
from sora_mcp.server.resources import register_resources
from sora_mcp.server.state import AppState
from sora_mcp.server.tools.table import add_tools

log = logging.getLogger(__name__)


def build_server(
    settings: Settings,
    *,
    clock: Clock | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
    profile: BackendProfile | None = None,
    batch_concurrency: int | None = None,
) -> SoraMCPServer:
    """The sora-mcp MCP server. `transport` replaces the HTTP transport to the backend (tests
    pass the emulator over ASGI with a fake clock); by default it follows `settings`. `profile`
    replaces the one `settings.profile` names (tests: a backend lacking an endpoint).
    `batch_concurrency` (default: `settings.batch_concurrency`) bounds how many direct-mode
    batch items are being sent at once."""
    clock = clock or SystemClock()
    profile = profile or PROFILES.get(settings.profile)
    if profile is None:
        raise ConfigError(f"SORA_MCP_PROFILE must be one of {', '.join(PROFILES)}; got {settings.profile!r}.")

    server = SoraMCPServer(
        "sora-mcp",
        title="Sora video studio" + (" (emulator)" if settings.is_emulator else ""),
        version=__version__,
        instructions=instructions(settings),
        website_url="https://github.com/sora-mcp/sora-mcp",
        lifespan=_lifespan(
            settings, clock, transport, profile, batch_concurrency or settings.batch_concurrency
        ),
        extensions=[studio_apps()],  # the studio view (MCP Apps) and its app-only media tool
        request_state_security=_request_state(settings),
    )
    add_tools(server)
    register_resources(server, settings)
    register_prompts(server)
    return server


def _lifespan(
    settings: Settings,
    clock: Clock,
    transport: httpx2.AsyncBaseTransport | None,
    profile: BackendProfile,
    batch_concurrency: int,
) -> Callable[[MCPServer[AppState]], AbstractAsyncContextManager[AppState]]:
    """What the server holds open while it runs: a session (`batch/session.py`: the registry,
    the HTTP clients, the Studio, the background batch runner and the resumer)."""

    @asynccontextmanager
    async def lifespan(_server: MCPServer[AppState]) -> AsyncIterator[AppState]:
        # The runner and the resumer start behind the session: `initialize` and `tools/list` are
        # answered at once, tool calls wait for them (protocol.py).
        async with open_session(
            settings,
            clock=clock,
            transport=transport,
            profile=profile,
            batch_concurrency=batch_concurrency,
            in_background=True,
        ) as session:
            yield AppState(
                studio=session.studio,
                settings=settings,
                batches=session.batches,
                started=session.started,
            )

    return lifespan


def _request_state(settings: Settings) -> RequestStateSecurity | None:
    """The configured keys, which every replica shares so any of them opens the state another
    sealed (a question asked on one, answered on the next); None: the SDK's key for this process."""
    if not settings.request_state_keys:
        return None
    return RequestStateSecurity(keys=list(settings.request_state_keys))
