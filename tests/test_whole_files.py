"""Files that are whole and waits that end (issue 8, findings 6–8): a download is accepted only
when its size matches what the server declared and the MP4 probes with the expected duration;
one deadline covers polling and the download; a completed video whose file is missing is fetched
again without being asked, and orphan temporary files are swept at start."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from helpers import Rig, structured
from sora_mcp.media.video import probe

pytestmark = pytest.mark.anyio


class Content(httpx2.AsyncBaseTransport):
    """In front of the emulator: MP4 downloads are served whole, or as `mode` says —
    "drip" (100 bytes every 0.5 s), "cut_with_length" (half the file, with a Content-Length
    that matches the half), "cut_close_delimited" (half the file, no Content-Length) or
    "short_of_length" (half the file under the whole file's Content-Length)."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.mode: str | None = None

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.inner.handle_async_request(request)
        is_video = request.url.path.endswith("/content") and request.url.params.get("variant") == "video"
        if self.mode is None or not is_video or response.status_code != 200:
            return response
        body = await response.aread()
        half = body[: len(body) // 2]

        async def pieces(data: bytes, step: int, pause: float) -> AsyncIterator[bytes]:
            for start in range(0, len(data), step):
                yield data[start : start + step]
                await anyio.sleep(pause)

        mp4 = {"content-type": "video/mp4"}
        match self.mode:
            case "drip":
                return httpx2.Response(
                    200, headers={**mp4, "content-length": str(len(body))}, content=pieces(body, 100, 0.5)
                )
            case "cut_with_length":
                return httpx2.Response(200, headers={**mp4, "content-length": str(len(half))}, content=half)
            case "cut_close_delimited":
                return httpx2.Response(200, headers=mp4, content=pieces(half, 4096, 0))
            case _:
                return httpx2.Response(
                    200, headers={**mp4, "content-length": str(len(body))}, content=pieces(half, 4096, 0)
                )


def rigged(tmp_path: Path) -> tuple[Rig, Content]:
    rig = Rig(tmp_path)
    content = Content(rig.transport)
    rig.transport = content  # type: ignore[assignment]  # the rig's client goes through it
    return rig, content


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*") if p.suffix in (".mp4", ".part"))


@pytest.mark.parametrize("mode", ["cut_with_length", "cut_close_delimited", "short_of_length"])
async def test_a_half_file_never_gets_the_final_name_and_is_fetched_whole_later(
    tmp_path: Path, mode: str
) -> None:
    rig, content = rigged(tmp_path)
    out = tmp_path / "out"
    content.mode = mode
    async with rig.client() as client:
        started = structured(await client.call_tool("generate", {"prompt": "a heron lands", "seconds": 4}))
        video_id = started["videos"][0]["id"]
        first = structured(await client.call_tool("get_video", {"video_id": video_id, "wait_seconds": 600}))
        assert first["video"]["status"] == "completed"
        assert "video" not in first["video"]["files"]
        assert first["video"]["downloaded"] is False
        assert [name for name in leftovers(out) if name.endswith(".mp4") or name.endswith(".part")] == []

        content.mode = None
        second = structured(await client.call_tool("get_video", {"video_id": video_id}))
    path = Path(second["video"]["files"]["video"])
    assert second["video"]["downloaded"] is True
    assert probe(path).seconds == pytest.approx(4, abs=0.3)
    assert leftovers(out) == [path.name]


async def test_a_dripping_download_does_not_hold_the_call_past_its_wait(tmp_path: Path) -> None:
    rig, content = rigged(tmp_path)
    async with rig.client() as client:
        started = structured(await client.call_tool("generate", {"prompt": "a slow river", "seconds": 4}))
        video_id = started["videos"][0]["id"]
        rig.clock.advance(3600 * 0 + 120)  # the render is done; only the download is left
        content.mode = "drip"
        began = time.monotonic()
        with anyio.fail_after(30):
            got = structured(await client.call_tool("get_video", {"video_id": video_id, "wait_seconds": 3}))
        took = time.monotonic() - began
    assert took < 3 + 2.0
    assert got["video"]["status"] == "completed"
    assert got["video"]["downloaded"] is False
    assert leftovers(tmp_path / "out") == []


async def test_waiting_covers_the_download_too(tmp_path: Path) -> None:
    rig, content = rigged(tmp_path)
    content.mode = "drip"
    async with rig.client() as client:
        began = time.monotonic()
        with anyio.fail_after(30):
            made: dict[str, Any] = structured(
                await client.call_tool(
                    "generate", {"prompt": "a clock ticks", "seconds": 4, "wait_seconds": 4}
                )
            )
        took = time.monotonic() - began
    assert took < 4 + 2.0
    assert made["videos"][0]["status"] == "completed"
    assert made["videos"][0]["downloaded"] is False
