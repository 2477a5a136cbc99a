"""The real `sora-mcp serve` process, over stdio and over streamable HTTP, as a desktop client
would start it. The emulator runs with a high speed so a 4 s clip renders in well under a second."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from helpers import structured
from sora_mcp.media import probe

pytestmark = pytest.mark.anyio


def _env(tmp_path: Path, speed: float = 400) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SORA_"))}
    env.update(
        SORA_MCP_HOME=str(tmp_path / "home"),
        SORA_MCP_OUTPUT_DIR=str(tmp_path / "out"),
        SORA_MCP_EMULATOR_SPEED=str(speed),
    )
    return env


def _stdio(tmp_path: Path, speed: float = 400) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "sora_mcp", "serve"], env=_env(tmp_path, speed)
    )


async def test_stdio_server_generates_follows_with_progress_and_remembers(tmp_path: Path) -> None:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

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
        assert progress and progress[-1] == 100
        info = probe(Path(done["video"]["files"]["video"]))
        assert (info.width, info.height, round(info.seconds, 2), info.frames) == (1280, 720, 4.0, 96)

        # A second process over the same registry (a new session) lists what the first one made.
        async with Client(_stdio(tmp_path)) as client:
            listed = structured(await client.call_tool("list_videos", {}))
    assert [v["id"] for v in listed["videos"]] == [video_id]
    assert listed["videos"][0]["status"] == "completed"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sora_mcp", "serve", "--transport", "http", "--port", str(port)],
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(
                        proc.stderr.read().decode() if proc.stderr else "server exited"
                    ) from None
                time.sleep(0.05)  # waiting for a real process to bind; not a test of timing
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()


async def test_streamable_http_server_answers_on_loopback(http_server: str) -> None:
    with anyio.fail_after(60):
        async with Client(http_server) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            started = structured(
                await client.call_tool("generate", {"prompt": "paper lanterns", "wait_seconds": 30})
            )
    assert {"generate", "get_video", "download", "list_videos"} <= tools
    assert started["videos"][0]["status"] == "completed"
