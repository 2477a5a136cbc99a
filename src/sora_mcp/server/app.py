"""Build the MCP server: one lifespan opens the registry and the HTTP client, tools do the rest.

The backend is reached over HTTP in every case. With the emulator it is the same client code path,
only the transport differs (`httpx2.ASGITransport` into the emulator's Starlette app).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio
import httpx2
from mcp.server import MCPServer

from sora_mcp import __version__
from sora_mcp.api.client import VideosClient
from sora_mcp.api.profile import PROFILES, BackendProfile
from sora_mcp.batch.runner import BatchRunner
from sora_mcp.batch.service import Batches
from sora_mcp.clock import Clock, SystemClock
from sora_mcp.config import Settings
from sora_mcp.errors import ConfigError
from sora_mcp.registry.store import Registry
from sora_mcp.server.apps import studio_apps
from sora_mcp.server.instructions import instructions
from sora_mcp.server.prompts import register_prompts
from sora_mcp.server.protocol import SoraMCPServer
from sora_mcp.server.resources import register_resources
from sora_mcp.server.state import AppState
from sora_mcp.server.tools.table import add_tools
from sora_mcp.studio.resume import Resumer
from sora_mcp.studio.studio import Studio

log = logging.getLogger(__name__)
EMULATOR_BASE_URL = "http://emulator.sora-mcp.invalid/v1"


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
    """What the server holds open while it runs: the registry, the HTTP clients, the Studio and
    the background batch runner and resumer."""

    @asynccontextmanager
    async def lifespan(_server: MCPServer[AppState]) -> AsyncIterator[AppState]:
        registry = Registry.open(settings.registry_dir, now=clock.now)
        backend_transport = transport or _default_transport(settings, clock)
        base_url = EMULATOR_BASE_URL if settings.is_emulator else settings.base_url
        timeout = httpx2.Timeout(settings.request_timeout, connect=min(10.0, settings.request_timeout))
        try:
            async with (
                httpx2.AsyncClient(transport=backend_transport, base_url=base_url, timeout=timeout) as http,
                httpx2.AsyncClient(timeout=httpx2.Timeout(20.0), follow_redirects=False) as fetch_http,
            ):
                client = VideosClient(
                    http,
                    api_key=settings.api_key,
                    profile=profile,
                    clock=clock,
                    content_timeout=settings.download_timeout,
                )
                studio = Studio(
                    settings=settings,
                    client=client,
                    registry=registry,
                    clock=clock,
                    fetch_http=fetch_http,
                    emulator_speed=settings.emulator_speed,
                )
                batches = Batches(studio, BatchRunner(studio, concurrency=batch_concurrency))
                # The runner lives as long as the server: it resumes unfinished direct batches
                # at start and sends queued items; stopping it lets in-flight sends finish.
                # The resumer starts after it, so batch sends it found interrupted are already
                # marked lost; it looks for lost jobs before the first call is taken, then
                # follows and downloads what an earlier process left running, and ends.
                async with anyio.create_task_group() as background:
                    await background.start(batches.runner.run)
                    await background.start(Resumer(studio).run)
                    try:
                        yield AppState(studio=studio, settings=settings, batches=batches)
                    finally:
                        background.cancel_scope.cancel()
        finally:
            registry.close()

    return lifespan


def _default_transport(settings: Settings, clock: Clock) -> httpx2.AsyncBaseTransport:
    if not settings.is_emulator:
        return httpx2.AsyncHTTPTransport(retries=0)  # retries are ours, and never for POSTs
    from sora_mcp.emulator.app import create_app
    from sora_mcp.emulator.faults import FaultConfig

    faults = FaultConfig.parse(settings.emulator_faults) if settings.emulator_faults else None
    app = create_app(
        root=settings.emulator_dir,
        clock=clock,
        speed=settings.emulator_speed,
        faults=faults,
        profile=settings.profile,
    )
    return httpx2.ASGITransport(app=app)
