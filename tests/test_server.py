"""The MCP server end to end, in memory: a real MCP client, the emulator over ASGI, a real
diskcache registry and real MP4 files."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from mcp.types import ImageContent, ResourceLink

from helpers import Rig, data_url, error_code, error_text, png_bytes, structured, tool_error
from sora_mcp.media.video import frame_at, probe

pytestmark = pytest.mark.anyio


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(root=tmp_path)


async def test_generate_wait_download_and_a_new_server_remembers(rig: Rig, tmp_path: Path) -> None:
    async with rig.client() as client:
        started = structured(
            await client.call_tool("generate", {"prompt": "a red kite over green dunes", "size": "1280x720"})
        )
        assert started["simulated"] is True
        assert started["estimated_cost_usd"] == pytest.approx(0.40)
        (video,) = started["videos"]
        assert video["status"] in ("queued", "in_progress")
        video_id = video["id"]

        seen: list[tuple[float, float | None, str | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, total, message))

        done = structured(
            await client.call_tool(
                "get_video", {"video_id": video_id, "wait_seconds": 600}, progress_callback=on_progress
            )
        )
    assert done["still_running"] is False
    assert done["video"]["status"] == "completed"
    assert len(seen) >= 2
    assert seen[-1][0] == 100
    assert all(b[0] >= a[0] for a, b in itertools.pairwise(seen))

    path = Path(done["video"]["files"]["video"])
    assert path.is_absolute() and path.parent == tmp_path / "out"
    info = probe(path)
    assert (info.width, info.height) == (1280, 720)
    assert info.seconds == pytest.approx(4.0, abs=0.01)
    assert info.frames == 24  # 4 s at the rig's 6 fps
    assert Path(done["video"]["files"]["thumbnail"]).read_bytes()[8:12] == b"WEBP"

    # A later session over the same registry lists it, with its files.
    async with rig.client() as client:
        listed = structured(await client.call_tool("list_videos", {}))
    assert [v["id"] for v in listed["videos"]] == [video_id]
    assert listed["videos"][0]["files"]["video"] == str(path)


async def test_get_video_returns_the_id_when_the_wait_ends_first(rig: Rig) -> None:
    async with rig.client() as client:
        started = structured(
            await client.call_tool("generate", {"prompt": "slow tide", "model": "sora-2-pro", "seconds": 20})
        )
        video_id = started["videos"][0]["id"]
        waited = structured(await client.call_tool("get_video", {"video_id": video_id, "wait_seconds": 1}))
        assert waited["still_running"] is True
        assert waited["video"]["id"] == video_id
        assert video_id in waited["next_step"]
        finished = structured(
            await client.call_tool("get_video", {"video_id": video_id, "wait_seconds": 1800})
        )
    assert finished["video"]["status"] == "completed"
    assert probe(Path(finished["video"]["files"]["video"])).seconds == pytest.approx(20.0, abs=0.01)


async def test_generate_with_wait_and_variations_starts_one_job_each(rig: Rig) -> None:
    async with rig.client() as client:
        result = structured(
            await client.call_tool(
                "generate", {"prompt": "two takes of a fox", "variations": 2, "wait_seconds": 600}
            )
        )
    assert rig.transport.count("POST", "/videos") == 2
    assert len({v["id"] for v in result["videos"]}) == 2
    assert all(v["status"] == "completed" for v in result["videos"])
    assert result["estimated_cost_usd"] == pytest.approx(0.80)


async def test_image_reference_of_another_size_is_cropped_and_becomes_the_first_frame(rig: Rig) -> None:
    image = png_bytes(900, 900, (30, 200, 60))
    async with rig.client() as client:
        result = structured(
            await client.call_tool(
                "generate",
                {
                    "prompt": "the field starts to sway",
                    "size": "720x1280",
                    "image": data_url(image),
                    "wait_seconds": 600,
                },
            )
        )
    video = result["videos"][0]
    first = frame_at(Path(video["files"]["video"]), 0.0).convert("RGB").resize((9, 16))
    r, g, b = first.getpixel((4, 8))  # type: ignore[misc]
    assert g > 150 and r < 90 and b < 110
    assert video["image_reference"]


async def test_a_failed_job_reports_its_error_code(rig: Rig) -> None:
    async with rig.client() as client:
        started = structured(
            await client.call_tool("generate", {"prompt": "anything [fail:moderation_blocked]"})
        )
        video_id = started["videos"][0]["id"]
        done = structured(await client.call_tool("get_video", {"video_id": video_id, "wait_seconds": 600}))
    assert done["video"]["status"] == "failed"
    assert done["video"]["error"]["code"] == "moderation_blocked"
    assert "moderation_blocked" in done["next_step"]
    assert done["video"]["files"] == {}


@pytest.mark.parametrize(
    ("arguments", "param"),
    [
        ({"prompt": "x", "model": "sora-3"}, "model"),
        ({"prompt": "x", "size": "1920x1080"}, "size"),  # only sora-2-pro has 1080p
        ({"prompt": "x", "seconds": 5}, "seconds"),
        ({"prompt": "x", "seconds": "4"}, "seconds"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x", "variations": 5}, "variations"),
        ({"prompt": "x", "image": "data:image/png;base64,bm90IGFuIGltYWdl"}, "image"),
        ({"prompt": "x", "image": "/etc/passwd"}, "image"),
        ({"prompt": "x", "image": "http://example.com/a.png"}, "image"),
    ],
)
async def test_bad_input_is_refused_before_any_request(
    rig: Rig, arguments: dict[str, object], param: str
) -> None:
    async with rig.client() as client:
        result = await client.call_tool("generate", arguments)
    assert tool_error(result)["param"] == param
    assert rig.transport.requests == []


async def test_refusal_messages_say_what_is_allowed(rig: Rig) -> None:
    async with rig.client() as client:
        size = error_text(await client.call_tool("generate", {"prompt": "x", "size": "1920x1080"}))
        model = error_text(await client.call_tool("generate", {"prompt": "x", "model": "veo"}))
    assert "720x1280" in size and "1280x720" in size
    assert "sora-2" in model and "sora-2-pro" in model


async def test_download_fetches_every_variant_with_resource_links(rig: Rig) -> None:
    async with rig.client() as client:
        started = structured(await client.call_tool("generate", {"prompt": "neon rain", "wait_seconds": 600}))
        video_id = started["videos"][0]["id"]
        result = await client.call_tool("download", {"video_id": video_id, "variant": "all"})
    data = structured(result)
    assert set(data["files"]) == {"video", "thumbnail", "spritesheet"}
    assert Path(data["files"]["spritesheet"]).read_bytes()[:3] == b"\xff\xd8\xff"
    links = [b for b in result.content if isinstance(b, ResourceLink)]
    assert {link.mime_type for link in links} == {"video/mp4", "image/webp", "image/jpeg"}
    assert all(str(link.uri).startswith("file:///") for link in links)
    assert any(isinstance(b, ImageContent) for b in result.content)


async def test_download_of_an_unfinished_video_says_to_wait(rig: Rig) -> None:
    async with rig.client() as client:
        started = structured(await client.call_tool("generate", {"prompt": "clouds"}))
        result = await client.call_tool("download", {"video_id": started["videos"][0]["id"]})
    assert error_code(result) == ("not_completed", "video_id")
    assert "wait_seconds" in error_text(result)


async def test_unknown_video_id_is_a_clear_tool_error(rig: Rig) -> None:
    async with rig.client() as client:
        missing = await client.call_tool("get_video", {"video_id": "video_nope"})
        bad = await client.call_tool("get_video", {"video_id": "has space"})
    assert error_code(missing) == ("unknown_video", "video_id")
    assert tool_error(missing)["kind"] == "invalid_request"
    assert "list_videos" in error_text(missing)
    assert error_code(bad) == ("invalid_request", "video_id")


async def test_list_videos_filters_and_orders_newest_first(rig: Rig) -> None:
    async with rig.client() as client:
        for prompt in ("alpha beach", "beta forest", "gamma beach"):
            structured(await client.call_tool("generate", {"prompt": prompt}))
            rig.clock.advance(1)
        everything = structured(await client.call_tool("list_videos", {}))
        beaches = structured(await client.call_tool("list_videos", {"text": "beach"}))
        pro = structured(await client.call_tool("list_videos", {"model": "sora-2-pro"}))
    assert [v["prompt"] for v in everything["videos"]] == ["gamma beach", "beta forest", "alpha beach"]
    assert [v["prompt"] for v in beaches["videos"]] == ["gamma beach", "alpha beach"]
    assert pro["count"] == 0


async def test_every_tool_declares_annotations_and_an_output_schema(rig: Rig) -> None:
    async with rig.client() as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) >= {"generate", "get_video", "download", "list_videos"}
    for tool in tools.values():
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is not None
        # Only deleting is destructive; everything else adds to the registry or reads it.
        assert tool.annotations.destructive_hint is (tool.name == "delete_video")
        assert tool.annotations.idempotent_hint is not None
        assert tool.annotations.open_world_hint is not None
        assert tool.output_schema is not None
        assert (tool.description and "NEXT" in tool.description) or "FREE" in (tool.description or "")
    assert tools["get_video"].annotations.read_only_hint is False  # type: ignore[union-attr]  # it downloads
    assert tools["generate"].annotations.idempotent_hint is False  # type: ignore[union-attr]


async def test_capabilities_resource_and_instructions_describe_the_emulator(rig: Rig) -> None:
    import json

    async with rig.client() as client:
        assert client.instructions is not None and "EMULATOR" in client.instructions
        contents = (await client.read_resource("sora://capabilities")).contents
        caps = json.loads(contents[0].text)  # type: ignore[union-attr]
    assert caps["models"]["sora-2"]["sizes"] == ["720x1280", "1280x720"]
    assert caps["models"]["sora-2-pro"]["usd_per_second"]["1792x1024"] == 0.5
    assert caps["backend"]["simulated"] is True


async def test_video_record_is_a_resource(rig: Rig) -> None:
    import json

    async with rig.client() as client:
        started = structured(await client.call_tool("generate", {"prompt": "a lighthouse"}))
        video_id = started["videos"][0]["id"]
        contents = (await client.read_resource(f"sora://videos/{video_id}")).contents
    assert json.loads(contents[0].text)["id"] == video_id  # type: ignore[union-attr]
