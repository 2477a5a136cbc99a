"""One backend and one registry, opened for work: what `sora-mcp serve` and the command line share.

A session holds the registry, the HTTP clients to the backend (the emulator in-process over ASGI,
or the remote base URL), the `Studio`, and the batch service with its background runner; on exit
it lets in-flight sends finish and closes everything. The MCP server opens one for its lifespan;
each `sora-mcp generate | extend | …` opens one for its command, over the same folders, so what
one makes the other lists.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import httpx2

from sora_mcp.api.client import VideosClient
from sora_mcp.api.profile import PROFILES, BackendProfile
from sora_mcp.batch.runner import DEFAULT_CONCURRENCY, BatchRunner
from sora_mcp.batch.service import Batches
from sora_mcp.batch.transports import LazyTransport, emulator_transport
from sora_mcp.clock import Clock, SystemClock
from sora_mcp.config import Settings
from sora_mcp.registry.factory import open_registry
from sora_mcp.studio.resume import Resumer
from sora_mcp.studio.studio import Studio

EMULATOR_BASE_URL = "http://emulator.sora-mcp.invalid/v1"
"""The in-process emulator's address: never resolved, the ASGI transport answers it."""


@dataclass
class Session:
    settings: Settings
    studio: Studio
    batches: Batches
    """Batch planning and following; its runner sends direct-mode items in the background."""
    started: anyio.Event = field(default_factory=anyio.Event)
    """Set once the batch runner runs and the resumer has looked for lost requests (see
    `open_session`'s `in_background`)."""


@asynccontextmanager
# Over 60 lines: every long-lived resource opened and closed in one visible order (registry, HTTP, runners).
async def open_session(
    settings: Settings,
    *,
    clock: Clock | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
    profile: BackendProfile | None = None,
    batch_concurrency: int = DEFAULT_CONCURRENCY,
    resume: bool = True,
    run_batches: bool = True,
    in_background: bool = False,
) -> AsyncIterator[Session]:
    """Open the registry and the backend; `transport` replaces the HTTP transport (tests), and
    `profile` the one `settings.profile` names. `resume` starts the `Resumer`, which finishes
    what an earlier process left running, and `run_batches` the batch runner, which also sends
    the queued items of earlier direct batches: the server wants both; a one-shot command only
    what it does (`sora-mcp batch` the runner, the others neither). With `in_background` the
    session is handed over at once and they start behind it (`Session.started` says when): the
    server answers `initialize` and `tools/list` without waiting for them, and holds its tool
    calls until they have."""
    clock = clock or SystemClock()
    profile = profile or PROFILES[settings.profile]
    registry = open_registry(settings, now=clock.now)
    backend_transport = transport or _default_transport(settings, clock)
    base_url = EMULATOR_BASE_URL if settings.is_emulator else settings.base_url
    timeout = httpx2.Timeout(settings.request_timeout, connect=min(10.0, settings.request_timeout))
    try:
        async with (
            httpx2.AsyncClient(transport=backend_transport, base_url=base_url, timeout=timeout) as http,
            httpx2.AsyncClient(
                transport=LazyTransport(httpx2.AsyncHTTPTransport),  # certificates load on first use
                timeout=httpx2.Timeout(20.0),
                follow_redirects=False,
            ) as fetch_http,
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
            batches = Batches(
                studio,
                BatchRunner(
                    studio, concurrency=batch_concurrency, lease_seconds=settings.batch_lease_seconds
                ),
            )
            # The runner lives as long as the session: it resumes unfinished direct batches at
            # start and sends queued items (claimed in a registry transaction, so two processes
            # never both send one); stopping it lets in-flight sends finish. The resumer starts
            # after it, so batch sends it found interrupted are already marked lost; it looks
            # for lost jobs before the first call is taken, then follows and downloads what an
            # earlier process left running; its watch then sweeps for what no server holds.
            try:
                session = Session(settings=settings, studio=studio, batches=batches)

                async def start_background() -> None:
                    if run_batches:
                        await background.start(batches.runner.run)
                    if resume:
                        resumer = Resumer(studio)
                        await background.start(resumer.run)
                        # Lost requests looked for on news, and the registry swept, until the end.
                        background.start_soon(resumer.watch)
                    session.started.set()

                async with anyio.create_task_group() as background:
                    background.start_soon(studio.claims.heartbeat)  # the fleet's claims held here
                    if in_background:
                        background.start_soon(start_background)
                    else:
                        await start_background()
                    try:
                        yield session
                    finally:
                        background.cancel_scope.cancel()
            except BaseExceptionGroup as group:
                # The task group wraps even one error of the caller's block in a group; give it
                # back as itself, so `except SoraError` (or KeyboardInterrupt) works around a session.
                if len(group.exceptions) == 1:
                    raise group.exceptions[0] from None
                raise
    finally:
        registry.close()


def _default_transport(settings: Settings, clock: Clock) -> httpx2.AsyncBaseTransport:
    if not settings.is_emulator:
        return httpx2.AsyncHTTPTransport(retries=0)  # retries are ours, and never for POSTs
    return emulator_transport(settings, clock)  # built on the first request (a lazy start)
