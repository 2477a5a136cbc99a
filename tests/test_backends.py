"""Backend differences the client must absorb: opaque ids, gateway retries, renamed Retry-After,
what a backend lacks remembered across sessions, and no paid job hidden behind a tool error."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest
from mcp import Client

from helpers import structured
from sora_mcp.api.retry import parse_retry_after
from sora_mcp.clock import FakeClock
from sora_mcp.config import Settings
from sora_mcp.emulator.app import create_app
from sora_mcp.errors import InvalidRequest
from sora_mcp.files import safe_filename
from sora_mcp.server.app import build_server
from sora_mcp.studio.planning import MAX_ID_CHARS, check_video_id

pytestmark = pytest.mark.anyio


def test_ids_are_opaque_up_to_kibibytes_of_printable_characters_and_name_files_by_hash() -> None:
    long_id = "video_" + ("aB3+/=:" * 700)[:4096]
    assert check_video_id(long_id) == long_id
    name = safe_filename(long_id, "thumbnail")
    assert name.startswith("id-") and name.endswith(".thumbnail.webp") and "/" not in name
    for bad in ("", "has space", "tab\there", "x" * (MAX_ID_CHARS + 1)):
        with pytest.raises(InvalidRequest):
            check_video_id(bad)


def test_the_retry_after_a_gateway_renames_is_read() -> None:
    assert parse_retry_after({"llm_provider-retry-after-ms": "1500"}, now=0) == 1.5
    assert parse_retry_after({"llm_provider-retry-after": "3"}, now=0) == 3.0
    assert parse_retry_after({"retry-after": "2", "llm_provider-retry-after": "9"}, now=0) == 2.0


def server_on(tmp_path: Path, profile: str, clock: FakeClock, app: object) -> Client:
    settings = Settings.from_env(backend="emulator", profile=profile)
    return Client(build_server(settings, clock=clock, transport=httpx2.ASGITransport(app=app)))  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [500, 429])
async def test_a_retrying_gateway_sends_a_failed_create_upstream_once(
    tmp_path: Path, clock: FakeClock, status: int
) -> None:
    app = create_app(root=tmp_path / "emu", clock=clock, render_fps=4, profile="litellm")
    app.state.faults.inject(status, methods=["POST"], path="/videos")
    async with server_on(tmp_path, "litellm", clock, app) as client:
        await client.call_tool("generate", {"prompt": "a gull on a post"})
    # Without x-litellm-num-retries: 0 the gateway would have re-sent it (see test_emulator_profiles).
    assert app.state.upstream.count("POST", "/videos") == 1


async def test_what_a_backend_lacks_is_remembered_for_its_base_url_across_sessions(
    tmp_path: Path, clock: FakeClock
) -> None:
    app = create_app(root=tmp_path / "emu", clock=clock, render_fps=4, profile="litellm")
    async with server_on(tmp_path, "openai", clock, app) as client:
        video = structured(await client.call_tool("generate", {"prompt": "a red kite", "wait_seconds": 600}))
        first = structured(
            await client.call_tool(
                "download", {"video_id": video["videos"][0]["id"], "variant": "spritesheet"}
            )
        )
    assert first["fallback"]
    before = app.state.upstream.count("GET", "/content")
    async with server_on(tmp_path, "openai", clock, app) as client:
        again = structured(
            await client.call_tool(
                "download", {"video_id": video["videos"][0]["id"], "variant": "spritesheet"}
            )
        )
    assert again["fallback"]
    # The new session knew the gateway ignores `variant`: it asked for nothing it would discard.
    assert app.state.upstream.count("GET", "/content") == before


async def test_a_failure_while_following_a_paid_extension_still_answers_its_id(
    tmp_path: Path, clock: FakeClock
) -> None:
    app = create_app(root=tmp_path / "emu", clock=clock, render_fps=4)
    async with server_on(tmp_path, "emulator", clock, app) as client:
        source = structured(
            await client.call_tool("generate", {"prompt": "a tram at night", "wait_seconds": 600})
        )
        app.state.faults.inject(401, times=50, methods=["GET"])
        result = structured(
            await client.call_tool(
                "extend",
                {"video_id": source["videos"][0]["id"], "prompt": "it turns left", "wait_seconds": 60},
            )
        )
    app.state.faults.clear()
    assert result["video"]["id"] and result["problem"]
    assert result["estimated_cost_usd"] > 0
    assert result["video"]["id"] in result["next_step"]
