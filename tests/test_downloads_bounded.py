"""Downloads are bounded and single: a batch finishing together opens at most a few transfers,
a file is fetched once however many callers want it, a slow first byte is not a dead connection,
and SORA_MCP_BATCH_CONCURRENCY bounds the sends."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx2
import pytest
import uvicorn
from mcp import Client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from helpers import Rig, structured
from procs import free_port
from sora_mcp.api.client import VideosClient
from sora_mcp.config import Settings
from sora_mcp.server.app import build_server
from sora_mcp.studio.downloads import DOWNLOADS_AT_ONCE

pytestmark = pytest.mark.anyio


class Concurrency(httpx2.AsyncBaseTransport):
    """Forwards to `inner` and records the most requests of one kind in flight at once."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, method: str, suffix: str) -> None:
        self.inner, self.method, self.suffix = inner, method, suffix
        self.now = self.most = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        watched = request.method == self.method and request.url.path.endswith(self.suffix)
        if not watched:
            return await self.inner.handle_async_request(request)
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            for _ in range(20):  # let the other tasks pile up here, if nothing bounds them
                await anyio.lowlevel.checkpoint()
            response = await self.inner.handle_async_request(request)
            await response.aread()
            return response
        finally:
            self.now -= 1


async def test_a_batch_finishing_together_downloads_each_file_once_a_few_at_a_time(tmp_path: Path) -> None:
    rig = Rig(root=tmp_path)
    watch = Concurrency(rig.transport, "GET", "/content")
    requests = [{"prompt": f"variant {i}: a teapot turns", "custom_id": f"v{i}"} for i in range(12)]
    built = build_server(Settings.from_env(backend="emulator"), clock=rig.clock, transport=watch)
    async with Client(built) as server:
        made = structured(await server.call_tool("batch", {"requests": requests, "mode": "direct"}))
        state = structured(
            await server.call_tool("get_batch", {"batch_id": made["batch_id"], "wait_seconds": 50})
        )
        while state["still_running"]:
            state = structured(
                await server.call_tool("get_batch", {"batch_id": made["batch_id"], "wait_seconds": 50})
            )

    assert state["totals"] == {"completed": 12}
    assert 1 < watch.most <= DOWNLOADS_AT_ONCE
    assert rig.transport.count("GET", "/content") == 12 * 2  # video + thumbnail, each once


async def test_two_callers_wanting_the_same_file_share_one_transfer(tmp_path: Path) -> None:
    rig = Rig(root=tmp_path)
    async with rig.client() as client:
        made = structured(await client.call_tool("generate", {"prompt": "a windmill"}))
        video_id = made["videos"][0]["id"]
        results: list[dict[str, Any]] = []

        async def follow() -> None:
            results.append(
                structured(await client.call_tool("get_video", {"video_id": video_id, "wait_seconds": 30}))
            )

        async with anyio.create_task_group() as group:
            group.start_soon(follow)
            group.start_soon(follow)

    assert [r["video"]["status"] for r in results] == ["completed", "completed"]
    assert rig.transport.count("GET", "/content") == 2  # one video, one thumbnail


@contextmanager
def slow_first_byte(delay: float) -> Iterator[str]:
    """A backend whose content answer starts after `delay` seconds (it renders on request)."""

    async def content(request: Request) -> Response:
        await anyio.sleep(delay)  # the backend rendering; real time, since timeouts are real time
        return Response(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 1000, media_type="video/mp4")

    app = Starlette(routes=[Route("/v1/videos/{video_id}/content", content)])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(500):  # a real server thread binding its socket; bounded, not a timing assertion
            if server.started:
                break
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def test_a_slow_first_byte_waits_for_the_download_timeout_not_the_request_timeout(
    tmp_path: Path,
) -> None:
    with slow_first_byte(0.6) as base_url:
        timeout = httpx2.Timeout(0.2)  # SORA_MCP_TIMEOUT, far below the backend's render time
        async with httpx2.AsyncClient(base_url=base_url, timeout=timeout) as http:
            patient = VideosClient(http, content_timeout=5.0)
            dest = await patient.download_content("video_1", tmp_path / "a.mp4")
            assert dest.stat().st_size == 1012
            hasty = VideosClient(http, content_timeout=None)
            with pytest.raises(Exception, match="timed out"):
                await hasty.download_content("video_1", tmp_path / "b.mp4")


async def test_the_batch_concurrency_setting_bounds_the_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SORA_MCP_BATCH_CONCURRENCY", "1")
    rig = Rig(root=tmp_path)
    watch = Concurrency(rig.transport, "POST", "/videos")
    built = build_server(Settings.from_env(backend="emulator"), clock=rig.clock, transport=watch)
    requests = [{"prompt": f"shot {i}: a fern unfurls", "custom_id": f"s{i}"} for i in range(6)]
    async with Client(built) as server:
        made = structured(await server.call_tool("batch", {"requests": requests, "mode": "direct"}))
        state = structured(
            await server.call_tool("get_batch", {"batch_id": made["batch_id"], "wait_seconds": 50})
        )
        while state["still_running"]:
            state = structured(
                await server.call_tool("get_batch", {"batch_id": made["batch_id"], "wait_seconds": 50})
            )
    assert state["totals"] == {"completed": 6}
    assert watch.most == 1
