"""The real `sora-mcp serve` process, over stdio and over streamable HTTP, as a desktop client
would start it. The emulator runs with a high speed so a 4 s clip renders in well under a second."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters

from helpers import structured
from procs import child_env, serving
from sora_mcp.api.client import VideosClient
from sora_mcp.api.polling import wait_for_video
from sora_mcp.api.profile import OPENAI
from sora_mcp.clock import SystemClock
from sora_mcp.media.video import probe

pytestmark = pytest.mark.anyio


def _stdio(tmp_path: Path, speed: float = 400) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "sora_mcp", "serve"], env=child_env(tmp_path, speed)
    )


async def test_stdio_server_generates_follows_with_progress_and_remembers(tmp_path: Path) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    with anyio.fail_after(60):
        # Speed 16: a 4 s sora-2 clip takes about 2 s, long enough to see progress arrive.
        async with Client(_stdio(tmp_path, speed=16)) as client:
            started = structured(
                await client.call_tool(
                    "generate", {"prompt": "a heron lifts off a misty lake", "size": "1280x720"}
                )
            )
            video_id = started["videos"][0]["id"]
            done = structured(
                await client.call_tool(
                    "get_video", {"video_id": video_id, "wait_seconds": 60}, progress_callback=on_progress
                )
            )
        assert done["video"]["status"] == "completed"
        assert seen and seen[-1] == 100
        info = probe(Path(done["video"]["files"]["video"]))
        assert (info.width, info.height, round(info.seconds, 2), info.frames) == (1280, 720, 4.0, 96)

        # A second process over the same registry (a new session) lists what the first one made.
        async with Client(_stdio(tmp_path)) as client:
            listed = structured(await client.call_tool("list_videos", {}))
    assert [v["id"] for v in listed["videos"]] == [video_id]
    assert listed["videos"][0]["status"] == "completed"


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    with serving(["serve", "--transport", "http"], child_env(tmp_path)) as port:
        yield f"http://127.0.0.1:{port}/mcp"


@pytest.fixture
def emulator_url(tmp_path: Path) -> Iterator[str]:
    with serving(["emulator", "--speed", "400"], child_env(tmp_path)) as port:
        yield f"http://127.0.0.1:{port}/v1"


async def test_streamable_http_server_answers_on_loopback(http_server: str) -> None:
    with anyio.fail_after(60):
        async with Client(http_server) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            started = structured(
                await client.call_tool("generate", {"prompt": "paper lanterns", "wait_seconds": 30})
            )
    assert {"generate", "get_video", "download", "list_videos"} <= tools
    assert started["videos"][0]["status"] == "completed"


async def test_emulator_command_serves_the_api_to_our_client_over_a_socket(
    emulator_url: str, tmp_path: Path
) -> None:
    async with httpx2.AsyncClient(base_url=emulator_url, timeout=30) as http:
        client = VideosClient(http, api_key="sk-anything", profile=OPENAI)
        video = await client.create_video(prompt="a lantern drifts upward", size="1280x720", seconds=4)
        with anyio.fail_after(30):
            done = await wait_for_video(client, video.id, timeout=30, clock=SystemClock(), min_interval=0.05)
        assert done.status == "completed"
        dest = await client.download_content(video.id, tmp_path / "lantern.mp4")
        listed = await client.list_videos(limit=10)
    info = probe(dest)
    assert (info.width, info.height, round(info.seconds, 2)) == (1280, 720, 4.0)
    assert [v.id for v in listed.data] == [video.id]
