"""The production tools end to end through the MCP client: extend, edit, characters, start_from,
delete, lineage and registry filters — against the emulator, with real MP4 files and a real
registry. Limits are proven to be enforced locally by counting the requests that reach the
backend."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from PIL import Image, ImageChops, ImageStat

from helpers import Rig, error_code, error_text, structured
from sora_mcp.api.profile import ALL_CAPABILITIES, BackendProfile
from sora_mcp.config import Settings
from sora_mcp.media.video import frame_at, probe, write_h264
from sora_mcp.registry.records import BatchRecord, CharacterRecord, VideoRecord
from sora_mcp.registry.store import Registry
from sora_mcp.server.app import build_server

pytestmark = pytest.mark.anyio


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(root=tmp_path)


@asynccontextmanager
async def serve(
    rig: Rig, *, profile: BackendProfile | None = None, transport: httpx2.AsyncBaseTransport | None = None
) -> AsyncIterator[Client]:
    """Like `rig.client()`, with a chosen backend profile or a transport in front of the rig's."""
    settings = Settings.from_env(backend="emulator")
    server = build_server(settings, clock=rig.clock, transport=transport or rig.transport, profile=profile)
    async with Client(server) as client:
        yield client


class EditsMissing(httpx2.AsyncBaseTransport):
    """A backend without `POST /videos/edits`: it answers 404 there, like an unknown route."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.refused = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method == "POST" and request.url.path.endswith("/videos/edits"):
            self.refused += 1
            return httpx2.Response(404, json={"error": {"message": "Invalid URL (POST /v1/videos/edits)"}})
        return await self.inner.handle_async_request(request)


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    return structured(await client.call_tool(tool, arguments))


async def made(client: Client, prompt: str, **arguments: Any) -> dict[str, Any]:
    """A completed (and downloaded) video."""
    result = await call(client, "generate", prompt=prompt, wait_seconds=600, **arguments)
    video: dict[str, Any] = result["videos"][0]
    assert video["status"] == "completed"
    return video


async def started(client: Client, rig: Rig, prompt: str, **arguments: Any) -> str:
    """A video that has completed on the backend (time moved on) but was never downloaded."""
    result = await call(client, "generate", prompt=prompt, **arguments)
    rig.clock.advance(3600)
    video_id: str = result["videos"][0]["id"]
    return video_id


def clip_file(path: Path, seconds: float, *, size: tuple[int, int] = (64, 64), fps: int = 4) -> Path:
    frames = [Image.new("RGB", size, (20 + 10 * i % 200, 90, 160)) for i in range(round(seconds * fps))]
    write_h264(path, frames, width=size[0], height=size[1], fps=fps)
    return path


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute pixel difference (0–255) of two frames."""
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


# ---- extend --------------------------------------------------------------------------------


async def test_extending_twice_makes_one_stitched_file_and_reports_the_budget(rig: Rig) -> None:
    async with rig.client() as client:
        source = await made(client, "a paper boat drifts down a gutter stream")
        first = await call(client, "extend", video_id=source["id"], prompt="it drops into a drain", seconds=4)
        assert first["budget"] == {
            "root_id": source["id"],
            "extensions_used": 1,
            "extensions_left": 5,
            "total_seconds": 8,
            "seconds_left": 112,
        }
        assert first["estimated_cost_usd"] == pytest.approx(0.40)  # the new seconds only
        middle = first["video"]["id"]
        rig.clock.advance(3600)  # let it complete without downloading it
        second = await call(
            client, "extend", video_id=middle, prompt="it sails out into a river", seconds=4, wait_seconds=600
        )
    video = second["video"]
    assert video["status"] == "completed"
    assert (video["relation"], video["parent_id"], video["seconds"]) == ("extension", middle, 12)
    assert second["budget"]["extensions_left"] == 4 and second["budget"]["seconds_left"] == 108
    assert probe(Path(video["files"]["video"])).seconds == pytest.approx(12.0, abs=0.01)
    assert rig.transport.count("POST", "/videos/extensions") == 2

    # A new server on the same registry shows the chain from both ends.
    async with rig.client() as client:
        root = await call(client, "get_video", video_id=source["id"])
        last = await call(client, "get_video", video_id=video["id"])
        children = await call(client, "list_videos", parent=middle)
        resource = (await client.read_resource(f"sora://videos/{middle}")).contents[0]
    assert root["parent"] is None
    assert [(c["id"], c["relation"]) for c in root["children"]] == [(middle, "extension")]
    assert last["parent"] == {"id": middle, "relation": "extension", "status": "completed"}
    assert [v["id"] for v in children["videos"]] == [video["id"]]
    middle_record = json.loads(resource.text)  # type: ignore[union-attr]
    assert middle_record["parent"]["id"] == source["id"]
    assert [c["id"] for c in middle_record["children"]] == [video["id"]]


async def test_a_seventh_extension_is_refused_before_any_request(rig: Rig) -> None:
    async with rig.client() as client:
        video_id = await started(client, rig, "a snail crosses a leaf")
        for _ in range(6):
            extended = await call(client, "extend", video_id=video_id, prompt="it keeps going")
            rig.clock.advance(3600)
            video_id = extended["video"]["id"]
        assert extended["budget"]["extensions_left"] == 0
        sent = len(rig.transport.requests)
        refused = await client.call_tool("extend", {"video_id": video_id, "prompt": "one more"})
    assert error_code(refused) == ("extension_limit", "video_id")
    assert "start_from" in error_text(refused)
    assert len(rig.transport.requests) == sent


async def test_an_extension_past_120_seconds_is_refused_before_any_request(rig: Rig) -> None:
    async with rig.client() as client:
        video_id = await started(client, rig, "a glacier calves", seconds=20)
        for _ in range(5):
            extended = await call(client, "extend", video_id=video_id, prompt="more ice falls", seconds=20)
            rig.clock.advance(3600)
            video_id = extended["video"]["id"]
        assert extended["budget"]["total_seconds"] == 120 and extended["budget"]["seconds_left"] == 0
        sent = len(rig.transport.requests)
        refused = await client.call_tool("extend", {"video_id": video_id, "prompt": "again", "seconds": 4})
    assert error_code(refused) == ("extension_too_long", "seconds")
    assert "124 s" in error_text(refused)
    assert len(rig.transport.requests) == sent


async def test_only_a_completed_video_can_be_extended(rig: Rig) -> None:
    async with rig.client() as client:
        result = await call(client, "generate", prompt="a kettle boils")
        refused = await client.call_tool("extend", {"video_id": result["videos"][0]["id"], "prompt": "steam"})
    assert error_code(refused) == ("not_completed", "video_id")
    assert rig.transport.count("POST", "/videos/extensions") == 0


# ---- edit ----------------------------------------------------------------------------------


async def test_an_edit_is_a_new_visibly_changed_video_pointing_at_its_source(rig: Rig) -> None:
    async with rig.client() as client:
        source = await made(client, "a yellow tram climbs a hill at noon")
        edited = await call(
            client,
            "edit",
            video_id=source["id"],
            prompt="Make it dusk; keep the tram, the hill and the camera the same.",
            wait_seconds=600,
        )
    video = edited["video"]
    assert video["id"] != source["id"]
    assert (edited["relation"], video["relation"], video["parent_id"]) == ("edit", "edit", source["id"])
    assert edited["fallback"] is None
    assert rig.transport.count("POST", "/videos/edits") == 1
    before = frame_at(Path(source["files"]["video"]), 2.0)
    after = frame_at(Path(video["files"]["video"]), 2.0)
    assert difference(before, after) > 20


async def test_an_edit_is_sent_as_a_remix_when_the_profile_has_no_edits(rig: Rig) -> None:
    no_edits = BackendProfile(name="no-edits", capabilities=ALL_CAPABILITIES - {"edits"})
    async with serve(rig, profile=no_edits) as client:
        video_id = await started(client, rig, "a windmill turns")
        edited = await call(client, "edit", video_id=video_id, prompt="Make the sails blue; keep the rest.")
    assert (edited["relation"], edited["video"]["relation"]) == ("remix", "remix")
    assert "no-edits" in edited["fallback"]
    assert rig.transport.count("POST", "/videos/edits") == 0
    assert rig.transport.count("POST", f"/videos/{video_id}/remix") == 1


async def test_an_edit_falls_back_to_remix_on_a_missing_endpoint_and_remembers_it(rig: Rig) -> None:
    transport = EditsMissing(rig.transport)
    async with serve(rig, transport=transport) as client:
        video_id = await started(client, rig, "a lantern sways")
        first = await call(client, "edit", video_id=video_id, prompt="Make the light green; keep the rest.")
        second = await call(client, "edit", video_id=video_id, prompt="Add rain; keep the rest.")
        listed = await call(client, "list_videos", parent=video_id)
    assert first["relation"] == second["relation"] == "remix"
    assert "404" in first["fallback"]
    assert transport.refused == 1  # asked once; the second edit went straight to remix
    assert rig.transport.count("POST", "/remix") == 2
    assert {v["id"] for v in listed["videos"]} == {first["video"]["id"], second["video"]["id"]}


# ---- characters ----------------------------------------------------------------------------


async def test_characters_from_a_clip_of_a_video_and_from_a_file_star_in_a_new_video(
    rig: Rig, tmp_path: Path
) -> None:
    async with rig.client() as client:
        source = await made(client, "a fluffy grey owl blinks on a branch")
        owl = await call(client, "create_character", name="Pip", video_id=source["id"], start_seconds=0.5)
        rig.clock.advance(1)
        fox_clip = clip_file(tmp_path / "out" / "fox.mp4", 3.0)
        fox = await call(client, "create_character", name="Rex", clip_path=str(fox_clip))
        video = await made(
            client, "Pip and Rex share a lantern in the snow", characters=["Pip", fox["character"]["id"]]
        )
        with_pip = await call(client, "list_videos", character="Pip")
        listed = await call(client, "list_characters")
        resource = (await client.read_resource("sora://characters")).contents[0]
    assert owl["clip_seconds"] == pytest.approx(3.0)
    cut = probe(Path(owl["clip_path"]))
    assert (cut.width, cut.height) == (720, 1280)  # the source's frame, so its aspect ratio
    assert owl["character"]["name"] == "Pip" and owl["character"]["source"].startswith(source["id"])
    assert video["character_ids"] == [owl["character"]["id"], fox["character"]["id"]]
    assert [v["id"] for v in with_pip["videos"]] == [video["id"]]
    assert [c["name"] for c in listed["characters"]] == ["Rex", "Pip"]
    assert [c["name"] for c in json.loads(resource.text)["characters"]] == ["Rex", "Pip"]  # type: ignore[union-attr]
    assert rig.transport.count("POST", "/videos/characters") == 2


async def test_characters_missing_from_the_prompt_are_refused_by_name(rig: Rig, tmp_path: Path) -> None:
    async with rig.client() as client:
        for name in ("Rex", "Mo"):
            clip = clip_file(tmp_path / "out" / f"{name}.mp4", 2.5)
            await call(client, "create_character", name=name, clip_path=str(clip))
        refused = await client.call_tool(
            "generate", {"prompt": "Rex naps by the fire", "characters": ["Rex", "Mo"]}
        )
        unknown = await client.call_tool("generate", {"prompt": "Zed runs", "characters": ["Zed"]})
    assert error_code(refused) == ("character_not_in_prompt", "prompt")
    assert "'Mo'" in error_text(refused) and "'Rex'" not in error_text(refused)
    assert error_code(unknown) == ("unknown_character", "characters")
    assert rig.transport.count("POST", "/videos") == 0


@pytest.mark.parametrize(("seconds", "shown"), [(6.0, "6.00 s"), (1.0, "1.00 s")])
async def test_a_character_clip_outside_two_to_four_seconds_is_refused_with_its_length(
    rig: Rig, tmp_path: Path, seconds: float, shown: str
) -> None:
    clip = clip_file(tmp_path / "out" / "clip.mp4", seconds)
    async with rig.client() as client:
        refused = await client.call_tool("create_character", {"name": "Blob", "clip_path": str(clip)})
    assert error_code(refused) == ("clip_length", "clip_path")
    assert shown in error_text(refused)
    assert rig.transport.requests == []


async def test_a_stretch_beyond_the_video_is_refused_before_uploading(rig: Rig) -> None:
    async with rig.client() as client:
        source = await made(client, "a jellyfish pulses")
        refused = await client.call_tool(
            "create_character", {"name": "Jelly", "video_id": source["id"], "start_seconds": 3.0}
        )
    assert error_code(refused) == ("stretch_outside_video", "start_seconds")
    assert "4.00 s" in error_text(refused)
    assert rig.transport.count("POST", "/videos/characters") == 0


async def test_three_characters_or_a_clip_outside_the_allowed_folders_are_refused(rig: Rig) -> None:
    async with rig.client() as client:
        three = await client.call_tool(
            "generate", {"prompt": "A, B and C dance", "characters": ["A", "B", "C"]}
        )
        outside = await client.call_tool("create_character", {"name": "X", "clip_path": "/etc/hostname"})
        both = await client.call_tool(
            "create_character", {"name": "X", "clip_path": "a.mp4", "video_id": "video_1"}
        )
    assert three.is_error  # refused by the input schema (at most 2)
    assert error_code(outside) == ("path_not_allowed", "clip_path")
    assert error_code(both) == ("conflicting_arguments", "clip_path")
    assert rig.transport.requests == []


# ---- start_from ----------------------------------------------------------------------------


async def test_start_from_makes_the_sources_last_frame_the_first_frame(rig: Rig) -> None:
    async with rig.client() as client:
        source = await made(client, "a red balloon rises over rooftops", size="1280x720")
        follow = await made(
            client, "the balloon drifts into clouds", size="1280x720", start_from=source["id"]
        )
        lineage = await call(client, "get_video", video_id=source["id"])
    first = frame_at(Path(follow["files"]["video"]), 0.0)
    source_path = Path(source["files"]["video"])
    last = difference(first, frame_at(source_path))
    assert last < 2
    assert all(difference(first, frame_at(source_path, t)) > 2 * last for t in (0.0, 2.0))
    assert (follow["parent_id"], follow["relation"]) == (source["id"], "generate")
    assert follow["image_reference"] == f"last frame of {source['id']}"
    assert [(c["id"], c["relation"]) for c in lineage["children"]] == [(follow["id"], "generate")]


async def test_start_from_and_an_image_together_are_refused(rig: Rig) -> None:
    async with rig.client() as client:
        refused = await client.call_tool(
            "generate", {"prompt": "x", "image": "a.png", "start_from": "video_123"}
        )
    assert error_code(refused) == ("conflicting_arguments", "start_from")
    assert rig.transport.requests == []


# ---- delete --------------------------------------------------------------------------------


async def test_delete_video_deletes_remotely_and_keeps_files_unless_asked(rig: Rig) -> None:
    async with rig.client() as client:
        source = await made(client, "a moth circles a lamp")
        deleted = await call(client, "delete_video", video_id=source["id"])
        assert deleted["files_kept"] and all(Path(p).is_file() for p in deleted["files_kept"])
        again = await call(client, "delete_video", video_id=source["id"], delete_files=True)
        listed = await call(client, "list_videos", status="deleted")
    assert deleted["remote"] == "deleted" and deleted["video"]["status"] == "deleted"
    assert again["remote"] == "already_deleted"
    assert again["files_deleted"] and not any(Path(p).exists() for p in again["files_deleted"])
    assert [v["id"] for v in listed["videos"]] == [source["id"]]
    assert rig.transport.count("DELETE") == 1


async def test_delete_video_only_marks_the_registry_when_the_backend_cannot_delete(rig: Rig) -> None:
    no_delete = BackendProfile(name="no-delete", capabilities=ALL_CAPABILITIES - {"delete"})
    async with serve(rig, profile=no_delete) as client:
        video_id = await started(client, rig, "a kite")
        deleted = await call(client, "delete_video", video_id=video_id)
    assert deleted["remote"] == "unsupported" and "cannot delete" in deleted["next_step"]
    assert deleted["video"]["status"] == "deleted"
    assert rig.transport.count("DELETE") == 0


# ---- registry browsing -----------------------------------------------------------------------


async def test_list_videos_filters_by_character_batch_and_parent_given_any_id(rig: Rig) -> None:
    settings = Settings.from_env(backend="emulator")
    now = rig.clock.now()

    def video(local_id: str, **fields: Any) -> VideoRecord:
        # Downloaded already, so a starting server has nothing to fetch for them.
        mp4 = settings.output_dir / f"video_{local_id}.mp4"
        mp4.parent.mkdir(parents=True, exist_ok=True)
        mp4.write_bytes(b"")
        base: dict[str, Any] = {
            "files": {"video": str(mp4)},
            "local_id": local_id,
            "id": f"video_{local_id}",
            "backend": "emulator",
            "model": "sora-2",
            "prompt": f"clip {local_id}",
            "size": "720x1280",
            "seconds": 4,
            "status": "completed",
            "created_at": now,
            "updated_at": now,
        }
        return VideoRecord(**(base | fields))

    with Registry.open(settings.registry_dir) as registry:
        registry.put_character(
            CharacterRecord(id="char_1", name="Pip", backend="emulator", source="test", created_at=now)
        )
        registry.put_batch(
            BatchRecord(
                local_id="b1",
                id="batch_9",
                backend="emulator",
                mode="native",
                status="done",
                created_at=now,
                updated_at=now,
            )
        )
        for record in (
            video("a"),
            video("b", parent_id="video_a", relation="edit", character_ids=["char_1"]),
            video("c", batch_id="b1", created_at=now + 1),
        ):
            registry.record_intent(record)
    async with rig.client() as client:
        by_name = await call(client, "list_videos", character="Pip")
        by_batch = await call(client, "list_videos", batch="batch_9")
        by_local_parent = await call(client, "list_videos", parent="a")
        by_parent = await call(client, "list_videos", parent="video_a", status="completed")
    assert [v["id"] for v in by_name["videos"]] == ["video_b"]
    assert [v["id"] for v in by_batch["videos"]] == ["video_c"]
    assert [v["id"] for v in by_local_parent["videos"]] == ["video_b"]
    assert [v["id"] for v in by_parent["videos"]] == ["video_b"]
    assert rig.transport.requests == []


async def test_production_tools_declare_cost_aware_annotations(rig: Rig) -> None:
    async with rig.client() as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    for name in ("extend", "edit", "create_character"):
        hints = tools[name].annotations
        assert hints is not None and hints.idempotent_hint is False and hints.open_world_hint is True
        assert "COST" in (tools[name].description or "") and "NEXT" in (tools[name].description or "")
    assert tools["delete_video"].annotations.destructive_hint is True  # type: ignore[union-attr]
    assert tools["list_characters"].annotations.read_only_hint is True  # type: ignore[union-attr]
    assert "non-human" in (tools["create_character"].description or "").lower()
    assert set(tools["generate"].input_schema["properties"]) >= {"characters", "start_from", "fit"}
