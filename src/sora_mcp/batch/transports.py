"""HTTP transports built on their first request: the embedded emulator, and the image fetcher.

Building the emulator's app imports its renderer (PyAV, numpy, Pillow) and opens its store, and
an HTTPS transport loads the system's CA certificates: together about as long again as the
server's own start. A server that is only asked `initialize` and `tools/list`, or that lists what
is already in the registry, needs neither; so each is built when the first request through it is
sent (the emulator is then reached over `httpx2.ASGITransport`, the same client code path as a
remote backend).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx2

from sora_mcp.clock import Clock
from sora_mcp.config import Settings

if TYPE_CHECKING:
    from starlette.types import ASGIApp

__all__ = ["LazyTransport", "emulator_transport"]


class LazyTransport(httpx2.AsyncBaseTransport):
    """The transport `build()` returns, called on the first request."""

    def __init__(self, build: Callable[[], httpx2.AsyncBaseTransport]) -> None:
        self._build = build
        self._inner: httpx2.AsyncBaseTransport | None = None

    @property
    def built(self) -> bool:
        """Whether the transport exists yet (a request has been sent through it)."""
        return self._inner is not None

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        # Built synchronously, with no await in between: two first requests racing on the event
        # loop still build one transport.
        if self._inner is None:
            self._inner = self._build()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()


def emulator_transport(settings: Settings, clock: Clock) -> LazyTransport:
    """The in-process emulator `settings` describe (its folder, speed, faults, profile)."""
    from sora_mcp.emulator.faults import FaultConfig  # light: a bad setting still fails at start

    faults = FaultConfig.parse(settings.emulator_faults) if settings.emulator_faults else None

    def build() -> httpx2.AsyncBaseTransport:
        from sora_mcp.emulator.app import create_app

        app: ASGIApp = create_app(
            root=settings.emulator_dir,
            clock=clock,
            speed=settings.emulator_speed,
            faults=faults,
            profile=settings.profile,
        )
        return httpx2.ASGITransport(app=app)

    return LazyTransport(build)
