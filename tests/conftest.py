"""Shared fixtures: every test runs with its own home and output folders and no real credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from starlette.applications import Starlette

from sora_mcp.clock import FakeClock
from sora_mcp.config import ENV_NAMES
from sora_mcp.emulator.app import create_app

# The PostgreSQL server and per-test database fixtures (tests/pg.py).
pytest_plugins = ("pg",)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    """A clock whose sleeps are instant; share it between the emulator and the client."""
    return FakeClock()


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Clear every variable sora-mcp reads (the shell's settings must not leak into a test), then
    point SORA_MCP_HOME and SORA_MCP_OUTPUT_DIR at a temp folder."""
    for var in ENV_NAMES:
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("SORA_MCP_HOME", str(home))
    monkeypatch.setenv("SORA_MCP_OUTPUT_DIR", str(tmp_path / "out"))
    return home


@pytest.fixture
def app(tmp_path: Path, clock: FakeClock) -> Starlette:
    """The emulator app on a fake clock, rendering at a low frame rate (sizes stay exact)."""
    return create_app(root=tmp_path / "emulator", clock=clock, render_fps=4)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx2.AsyncClient]:
    """An HTTP client into `app` over ASGI — the path every backend request takes."""
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://emulator/v1"
    ) as client:
        yield client
