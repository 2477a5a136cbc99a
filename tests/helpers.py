"""Test helpers: a request-counting transport in front of the emulator, and an MCP server wired
to it with a fake clock — the same HTTP code path a remote backend uses."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.types import CallToolResult
from PIL import Image
from starlette.applications import Starlette

from sora_mcp.clock import FakeClock
from sora_mcp.config import Settings
from sora_mcp.emulator.app import create_app
from sora_mcp.server.app import build_server


class CountingTransport(httpx2.AsyncBaseTransport):
    """Forwards to the emulator and remembers every request (method, path)."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append((request.method, request.url.path))
        return await self.inner.handle_async_request(request)

    def count(self, method: str, path_suffix: str = "") -> int:
        return sum(1 for m, p in self.requests if m == method and p.endswith(path_suffix))


@dataclass
class Rig:
    """An emulator, a transport that counts requests into it, and a fake clock they share."""

    root: Path
    clock: FakeClock = field(default_factory=FakeClock)
    speed: float = 40.0
    app: Starlette = field(init=False)
    transport: CountingTransport = field(init=False)

    def __post_init__(self) -> None:
        self.app = create_app(root=self.root / "emulator", clock=self.clock, speed=self.speed, render_fps=6)
        self.transport = CountingTransport(httpx2.ASGITransport(app=self.app))

    @asynccontextmanager
    async def client(
        self, *, client_args: dict[str, Any] | None = None, **overrides: Any
    ) -> AsyncIterator[Client]:
        """An MCP client on a server over this rig; `overrides` go to Settings, `client_args` to
        the Client (e.g. a roots callback)."""
        settings = Settings.from_env(backend="emulator", **overrides)
        server = build_server(settings, clock=self.clock, transport=self.transport)
        async with Client(server, **(client_args or {})) as client:
            yield client


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


def error_text(result: CallToolResult) -> str:
    assert result.is_error
    return " ".join(getattr(block, "text", "") for block in result.content)


def tool_error(result: CallToolResult) -> dict[str, Any]:
    """The machine-readable error of an isError result: kind, code, param, message."""
    assert result.is_error, result.content
    assert result.structured_content is not None, result.content
    error: dict[str, Any] = result.structured_content["error"]
    assert error["message"] == error_text(result)
    return error


def error_code(result: CallToolResult) -> tuple[str, str | None]:
    """(code, param) of a tool error."""
    error = tool_error(result)
    return error["code"], error["param"]


def png_bytes(width: int, height: int, color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


class StalledClock:
    """Tells the shared time but never finishes a sleep: a server whose waits stall (a queue
    paused on a 429, a follow still waiting), to stop or cancel it at that point."""

    def __init__(self, inner: FakeClock) -> None:
        self.inner = inner
        self.sleeping = anyio.Event()

    def now(self) -> float:
        return self.inner.now()

    async def sleep(self, seconds: float) -> None:
        self.sleeping.set()
        await anyio.sleep_forever()
