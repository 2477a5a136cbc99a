"""Hostile inputs answer in the project's voice and never reach outside the allowed folders
(issue 8, findings 7, 9 and 12): a playlist clip is refused before FFmpeg could follow it, a
FIFO never blocks a call, and every malformed argument maps to a structured tool error."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.types import CallToolResult

from helpers import Rig, structured

pytestmark = pytest.mark.anyio


def tool_error(result: CallToolResult) -> dict[str, Any]:
    """The structured error of a failed call; fails the test on an opaque one."""
    assert result.is_error, result.content
    text = " ".join(getattr(block, "text", "") for block in result.content)
    assert not text.startswith("Error executing tool"), text
    assert result.structured_content is not None, text
    error: dict[str, Any] = result.structured_content["error"]
    return error


class OpenedWatch:
    """A FIFO outside every allowed folder and a thread that notices if anyone opens it for
    reading (its own open for writing returns only then)."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self.opened = threading.Event()
        self._thread = threading.Thread(target=self._wait, daemon=True)
        self._thread.start()

    def _wait(self) -> None:
        with open(self.path, "wb"):  # blocks until a reader opens the FIFO
            self.opened.set()

    def release(self) -> None:
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)  # unblocks the watching thread
        self._thread.join(timeout=5)
        os.close(fd)


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[OpenedWatch]:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    watch = OpenedWatch(folder / "secret.ts")
    yield watch
    watch.release()


async def test_a_playlist_clip_is_refused_and_ffmpeg_opens_nothing_outside_the_roots(
    tmp_path: Path, outside: OpenedWatch
) -> None:
    rig = Rig(tmp_path)
    out = tmp_path / "out"
    out.mkdir(parents=True, exist_ok=True)
    playlist = out / "x.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:3.0,\n{outside.path}\n#EXT-X-ENDLIST\n")
    async with rig.client() as client:
        with anyio.fail_after(20):
            result = await client.call_tool("create_character", {"name": "Pip", "clip_path": str(playlist)})
    error = tool_error(result)
    assert (error["kind"], error["param"]) == ("invalid_request", "clip_path")
    assert not outside.opened.is_set()
    assert rig.transport.count("POST", "/characters") == 0


async def test_a_fifo_as_clip_is_refused_at_once(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    out = tmp_path / "out"
    out.mkdir(parents=True, exist_ok=True)
    fifo = out / "clip.mp4"
    os.mkfifo(fifo)
    async with rig.client() as client:
        with anyio.fail_after(10):
            result = await client.call_tool("create_character", {"name": "Pip", "clip_path": str(fifo)})
    assert tool_error(result)["param"] == "clip_path"
    assert rig.transport.count("POST", "/characters") == 0


@pytest.mark.parametrize(
    ("tool", "arguments", "param"),
    [
        ("generate", {"prompt": "a cat", "image": "https://[::1"}, "image"),
        ("generate", {"prompt": "a cat", "image": "https://example.com:99999/cat.png"}, "image"),
        ("create_character", {"name": "Pip", "clip_path": "x" * 5000 + ".mp4"}, "clip_path"),
        ("create_character", {"name": "Pip", "clip_path": "a/" * 3000 + "b.mp4"}, "clip_path"),
    ],
)
async def test_malformed_arguments_are_structured_tool_errors(
    tmp_path: Path, tool: str, arguments: dict[str, Any], param: str
) -> None:
    rig = Rig(tmp_path)
    async with rig.client() as client:
        error = tool_error(await client.call_tool(tool, arguments))
    assert error["kind"] == "invalid_request"
    assert error["param"] == param
    assert rig.transport.count("POST") == 0


async def test_a_huge_start_second_is_a_structured_tool_error(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    async with rig.client() as client:
        made = structured(
            await client.call_tool("generate", {"prompt": "an owl blinks", "seconds": 4, "wait_seconds": 600})
        )
        video_id = made["videos"][0]["id"]
        error = tool_error(
            await client.call_tool(
                "create_character", {"name": "Pip", "video_id": video_id, "start_seconds": 1e308}
            )
        )
    assert (error["kind"], error["param"]) == ("invalid_request", "start_seconds")
    assert rig.transport.count("POST", "/characters") == 0


def _small_disk(path: Path) -> bool:
    """Mount a 256 KiB tmpfs at `path` (root only, where mounting is allowed)."""
    if shutil.which("mount") is None or os.geteuid() != 0:
        return False
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(path)], capture_output=True
    )
    return done.returncode == 0


async def test_a_full_disk_during_the_download_is_a_note_and_a_structured_error(tmp_path: Path) -> None:
    full = tmp_path / "full"
    if not _small_disk(full):
        pytest.skip("needs root and mount to make a small disk")
    try:
        (full / "filler").write_bytes(b"\0" * (250 * 1024))
        rig = Rig(tmp_path)
        async with rig.client(output_dir=full) as client:
            made = structured(
                await client.call_tool(
                    "generate", {"prompt": "a wave breaks", "seconds": 4, "wait_seconds": 600}
                )
            )
            video = made["videos"][0]
            assert video["status"] == "completed" and "video" not in video["files"]
            error = tool_error(await client.call_tool("download", {"video_id": video["id"]}))
        assert error["kind"] == "local_file_error"
        assert [p.name for p in full.iterdir()] == ["filler"]
    finally:
        subprocess.run(["umount", "-l", str(full)], check=False)  # noqa: ASYNC221 - teardown, after the server
