"""Every backend profile carries the whole production, through the MCP client, against the
emulator answering as that server — natively where the server can, else by a labelled fallback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from mcp import Client

from backend_scenario import run_scenario
from sora_mcp.clock import FakeClock
from sora_mcp.config import PROFILE_NAMES, Settings
from sora_mcp.emulator.app import create_app
from sora_mcp.server.app import build_server

pytestmark = pytest.mark.anyio

# What each server does itself; everything else must come back with a `fallback` label.
NATIVE = {
    "openai": {"extend", "thumbnail", "edit", "character", "batch", "delete"},
    "emulator": {"extend", "thumbnail", "edit", "character", "batch", "delete"},
    "azure": {"thumbnail", "remix", "delete"},
    "litellm": {"character"},
    "bifrost": {"thumbnail", "remix", "delete"},
    "vllm-omni": {"delete"},
    "sglang": {"delete"},
    "aquiles": {"delete"},
    "openrouter": set(),
}


@asynccontextmanager
async def served_as(tmp_path: Path, profile: str, clock: FakeClock) -> AsyncIterator[tuple[Client, object]]:
    app = create_app(root=tmp_path / "emulator", clock=clock, speed=40.0, render_fps=6, profile=profile)
    settings = Settings.from_env(backend="emulator", profile=profile)
    server = build_server(settings, clock=clock, transport=httpx2.ASGITransport(app=app))
    async with Client(server) as client:
        yield client, app


def test_every_profile_is_in_the_table() -> None:
    assert set(NATIVE) == set(PROFILE_NAMES)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
async def test_the_production_runs_on_every_profile_with_each_fallback_labelled(
    tmp_path: Path, clock: FakeClock, profile: str
) -> None:
    native = NATIVE[profile]
    async with served_as(tmp_path, profile, clock) as (client, _app):
        steps = await run_scenario(client)

    def labelled(fallback: str | None, step: str) -> None:
        if step in native:
            assert fallback is None, (step, fallback)
        else:
            assert fallback, f"{profile}: {step} was done by a fallback but says nothing"

    labelled(steps["extend"]["fallback"], "extend")
    labelled(steps["thumbnail"]["fallback"], "thumbnail")
    edit = steps["edit"]
    if "edit" in native:
        assert edit["relation"] == "edit" and edit["fallback"] is None
    else:
        assert edit["fallback"]
        assert edit["relation"] == ("remix" if "remix" in native else "edit")
    is_local = steps["character"]["character"]["id"].startswith("local_char_")
    assert is_local == ("character" not in native)
    if is_local:
        assert steps["starring"]["fallback"]
    else:
        assert steps["starring"]["character_ids"] == [steps["character"]["character"]["id"]]
    assert steps["batch"]["mode"] == ("native" if "batch" in native else "direct")
    assert steps["delete"]["remote"] == ("deleted" if "delete" in native else "unsupported")
