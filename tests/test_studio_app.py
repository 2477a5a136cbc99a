"""The studio view (MCP Apps) as the protocol sees it: the binding, the ui:// resource and its
policy, the app-only media tool, and what clients without Apps get instead. The view itself
runs in a real browser in test_studio_browser.py."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from mcp.types import EmbeddedResource

from helpers import Rig, error_code, error_text, structured
from sora_mcp.config import Settings
from sora_mcp.server.app import build_server
from sora_mcp.server.apps import STUDIO_URI
from sora_mcp.server.apps.media import CHUNK_BYTES

pytestmark = pytest.mark.anyio


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(root=tmp_path, speed=2000)


@asynccontextmanager
async def session(rig: Rig, *, apps: bool) -> AsyncIterator[Client]:
    """A client that renders MCP Apps views (as Claude or VS Code do) or one that does not."""
    server = build_server(Settings.from_env(backend="emulator"), clock=rig.clock, transport=rig.transport)
    extensions = [advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})] if apps else None
    async with Client(server, extensions=extensions) as client:
        yield client


async def _completed(client: Client, seconds: int = 4) -> dict[str, Any]:
    made = structured(await client.call_tool("generate", {"prompt": "a kite", "seconds": seconds}))
    video_id = made["videos"][0]["id"]
    done = structured(await client.call_tool("get_video", {"video_id": video_id, "wait_seconds": 600}))
    assert done["video"]["status"] == "completed"
    return dict(done["video"])


async def _media(
    client: Client, video_id: str, variant: str, offset: int = 0
) -> tuple[dict[str, Any], bytes]:
    result = await client.call_tool(
        "studio_media", {"video_id": video_id, "variant": variant, "offset": offset}
    )
    meta = structured(result)
    (block,) = result.content
    assert isinstance(block, EmbeddedResource)
    assert block.resource.mime_type == meta["mime_type"]
    return meta, base64.b64decode(block.resource.blob)  # type: ignore[union-attr]


async def test_get_video_and_list_videos_open_the_studio_view_and_the_media_tool_is_for_the_app_only(
    rig: Rig,
) -> None:
    async with session(rig, apps=True) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        capabilities = client.session.server_capabilities
    for name in ("get_video", "list_videos"):
        meta = tools[name].meta
        assert meta is not None and meta["ui"] == {"resourceUri": STUDIO_URI}
    media = tools["studio_media"]
    assert media.meta is not None and media.meta["ui"] == {"resourceUri": STUDIO_URI, "visibility": ["app"]}
    assert media.annotations is not None and media.annotations.read_only_hint is True
    assert capabilities is not None and capabilities.extensions is not None
    assert EXTENSION_ID in capabilities.extensions


async def test_the_view_is_an_mcp_app_that_may_reach_no_network(rig: Rig) -> None:
    async with session(rig, apps=True) as client:
        listed = {str(r.uri): r for r in (await client.list_resources()).resources}
        read = await client.read_resource(STUDIO_URI)
    assert listed[STUDIO_URI].mime_type == APP_MIME_TYPE
    (content,) = read.contents
    assert content.mime_type == APP_MIME_TYPE
    assert content.meta is not None
    csp = content.meta["ui"]["csp"]
    assert csp == {"connectDomains": [], "resourceDomains": [], "frameDomains": [], "baseUriDomains": []}
    html = content.text  # type: ignore[union-attr]
    policy = re.search(r'http-equiv="Content-Security-Policy"\s+content="([^"]+)"', html)
    assert policy is not None
    directives = dict(d.strip().split(" ", 1) for d in policy.group(1).split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'none'"
    assert directives["media-src"] == "data: blob:"
    assert "http" not in policy.group(1)


async def test_studio_media_hands_the_app_the_downloaded_files_in_chunks(rig: Rig) -> None:
    async with session(rig, apps=True) as client:
        video = await _completed(client, seconds=20)
        file_bytes = Path(video["files"]["video"]).read_bytes()
        assert len(file_bytes) > CHUNK_BYTES  # a 20 s clip needs more than one chunk
        received, offset = b"", 0
        meta: dict[str, Any] = {"done": False}
        while not meta["done"]:
            meta, chunk = await _media(client, video["id"], "video", offset)
            assert meta["offset"] == offset and meta["length"] == len(chunk) <= CHUNK_BYTES
            received += chunk
            offset += len(chunk)
        thumb_meta, thumb = await _media(client, video["id"], "thumbnail")
    assert received == file_bytes
    assert meta["size"] == len(file_bytes) and meta["mime_type"] == "video/mp4"
    assert thumb_meta["done"] is True and thumb_meta["mime_type"] == "image/webp"
    assert thumb == Path(video["files"]["thumbnail"]).read_bytes()


async def test_studio_media_refuses_files_it_does_not_have_and_offsets_past_the_end(rig: Rig) -> None:
    async with session(rig, apps=True) as client:
        video = await _completed(client)
        size = Path(video["files"]["video"]).stat().st_size
        past = await client.call_tool("studio_media", {"video_id": video["id"], "offset": size + 1})
        queued = structured(await client.call_tool("generate", {"prompt": "a second kite"}))["videos"][0]
        early = await client.call_tool("studio_media", {"video_id": queued["id"]})
        unknown = await client.call_tool("studio_media", {"video_id": "video_nope"})
    assert error_code(past) == ("offset_past_end", "offset")
    assert error_code(early) == ("not_downloaded", "variant")
    assert queued["id"] in error_text(early)
    assert error_code(unknown)[1] == "video_id"


async def test_a_client_without_apps_gets_todays_text_and_no_media_bytes(rig: Rig) -> None:
    async with session(rig, apps=False) as client:
        video = await _completed(client)
        shown = await client.call_tool("get_video", {"video_id": video["id"]})
        media = await client.call_tool("studio_media", {"video_id": video["id"]})
    assert structured(shown)["video"]["files"] == video["files"]
    assert any(getattr(b, "text", "").startswith("{") for b in shown.content)
    assert error_code(media) == ("apps_only", None)
    assert not any(isinstance(b, EmbeddedResource) for b in media.content)
    assert "get_video" in error_text(media) and "download" in error_text(media)
