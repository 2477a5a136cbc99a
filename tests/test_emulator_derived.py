"""The emulator over ASGI: remix, edits, extensions and characters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest

from sora_mcp import catalog
from sora_mcp.clock import FakeClock
from sora_mcp.emulator.render import RenderSpec, render_video
from sora_mcp.media.video import probe

LONGEST_RENDER = catalog.estimate_render_seconds("sora-2-pro", 20) / 20


def clip(path: Path, *, seconds: float, size: tuple[int, int] = (64, 64), fps: int = 4) -> bytes:
    render_video(
        RenderSpec(prompt="a paper crane", width=size[0], height=size[1], seconds=seconds, fps=fps), path
    )
    return path.read_bytes()


def assert_error(response: httpx2.Response, status: int, *, param: str | None, code: str | None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, code), error


async def completed(
    client: httpx2.AsyncClient, clock: FakeClock, path: str = "/videos", **body: Any
) -> dict[str, Any]:
    response = await client.post(path, json={"prompt": "a red fox in snow", **body})
    assert response.status_code == 200, response.text
    clock.advance(LONGEST_RENDER)
    video: dict[str, Any] = (await client.get(f"/videos/{response.json()['id']}")).json()
    assert video["status"] == "completed"
    return video


async def duration_of(client: httpx2.AsyncClient, video_id: str, tmp_path: Path) -> tuple[int, int, float]:
    response = await client.get(f"/videos/{video_id}/content")
    assert response.status_code == 200, response.text
    path = tmp_path / f"{video_id}.mp4"
    path.write_bytes(response.content)
    info = probe(path)
    return info.width, info.height, info.seconds


@pytest.mark.anyio
async def test_a_remix_is_a_new_video_pointing_at_its_source(
    client: httpx2.AsyncClient, clock: FakeClock
) -> None:
    source = await completed(client, clock, seconds="8", size="1280x720")
    remix = (await client.post(f"/videos/{source['id']}/remix", json={"prompt": "make it autumn"})).json()
    assert remix["id"] != source["id"]
    assert (remix["remixed_from_video_id"], remix["prompt"], remix["status"]) == (
        source["id"],
        "make it autumn",
        "queued",
    )
    assert (remix["seconds"], remix["size"], remix["model"]) == ("8", "1280x720", "sora-2")


@pytest.mark.anyio
async def test_only_a_completed_video_can_be_remixed_edited_or_extended(client: httpx2.AsyncClient) -> None:
    pending = (await client.post("/videos", json={"prompt": "a fox"})).json()
    remix = await client.post(f"/videos/{pending['id']}/remix", json={"prompt": "x"})
    assert_error(remix, 400, param=None, code="invalid_video_state")
    edit = await client.post("/videos/edits", json={"prompt": "x", "video": {"id": pending["id"]}})
    assert_error(edit, 400, param="video", code="invalid_video_state")
    extend = await client.post(
        "/videos/extensions", json={"prompt": "x", "seconds": "4", "video": {"id": pending["id"]}}
    )
    assert_error(extend, 400, param="video", code="invalid_video_state")
    missing = await client.post("/videos/edits", json={"prompt": "x", "video": {"id": "video_nope"}})
    assert_error(missing, 404, param="video", code="video_not_found")


@pytest.mark.anyio
async def test_an_edit_by_id_renders_the_source_visibly_changed(
    client: httpx2.AsyncClient, clock: FakeClock, tmp_path: Path
) -> None:
    source = await completed(client, clock)
    edit = (
        await client.post("/videos/edits", json={"prompt": "paint it blue", "video": {"id": source["id"]}})
    ).json()
    assert (edit["prompt"], edit["seconds"], edit["remixed_from_video_id"]) == ("paint it blue", "4", None)
    clock.advance(LONGEST_RENDER)
    assert await duration_of(client, edit["id"], tmp_path) == (720, 1280, 4.0)
    original = await client.get(f"/videos/{source['id']}/content")
    changed = await client.get(f"/videos/{edit['id']}/content")
    assert original.content != changed.content


@pytest.mark.anyio
async def test_an_edit_takes_an_uploaded_video_or_a_bracketed_id_as_multipart(
    client: httpx2.AsyncClient, clock: FakeClock, tmp_path: Path
) -> None:
    upload = clip(tmp_path / "src.mp4", seconds=2, size=(720, 1280))
    edit = await client.post(
        "/videos/edits", data={"prompt": "snow falls"}, files={"video": ("src.mp4", upload, "video/mp4")}
    )
    assert edit.status_code == 200, edit.text
    assert (edit.json()["seconds"], edit.json()["size"]) == ("2", "720x1280")

    source = await completed(client, clock)
    by_id = await client.post(
        "/videos/edits",
        data={"prompt": "snow falls", "video[id]": source["id"]},
        files=_ForceMultipart(),
    )
    assert by_id.status_code == 200, by_id.text

    odd = clip(tmp_path / "odd.mp4", seconds=2, size=(64, 64))
    refused = await client.post(
        "/videos/edits", data={"prompt": "x"}, files={"video": ("odd.mp4", odd, "video/mp4")}
    )
    assert_error(refused, 400, param="video", code="invalid_video_dimensions")
    garbage = await client.post(
        "/videos/edits", data={"prompt": "x"}, files={"video": ("a.mp4", b"nope", "video/mp4")}
    )
    assert_error(garbage, 400, param="video", code="invalid_video")


@pytest.mark.anyio
async def test_an_extension_is_the_source_followed_by_the_new_segment(
    client: httpx2.AsyncClient, clock: FakeClock, tmp_path: Path
) -> None:
    source = await completed(client, clock)
    response = await client.post(
        "/videos/extensions",
        json={"prompt": "the fox runs on", "seconds": "4", "video": {"id": source["id"]}},
    )
    assert response.status_code == 200, response.text
    extension = response.json()
    assert (extension["seconds"], extension["size"], extension["prompt"]) == (
        "8",
        "720x1280",
        "the fox runs on",
    )
    clock.advance(LONGEST_RENDER)
    assert await duration_of(client, extension["id"], tmp_path) == (720, 1280, 8.0)


@pytest.mark.anyio
async def test_an_extension_of_an_uploaded_video_keeps_the_upload_first(
    client: httpx2.AsyncClient, clock: FakeClock, tmp_path: Path
) -> None:
    upload = clip(tmp_path / "src.mp4", seconds=2, size=(720, 1280))
    response = await client.post(
        "/videos/extensions",
        data={"prompt": "on", "seconds": "4"},
        files={"video": ("src.mp4", upload, "video/mp4")},
    )
    assert response.status_code == 200, response.text
    assert response.json()["seconds"] == "6"
    clock.advance(LONGEST_RENDER)
    assert await duration_of(client, response.json()["id"], tmp_path) == (720, 1280, 6.0)


@pytest.mark.anyio
async def test_a_source_takes_at_most_six_extensions(client: httpx2.AsyncClient, clock: FakeClock) -> None:
    source = await completed(client, clock)
    body = {"prompt": "more", "seconds": "4", "video": {"id": source["id"]}}
    for _ in range(catalog.EXTENSIONS_PER_VIDEO):
        assert (await client.post("/videos/extensions", json=body)).status_code == 200
    assert_error(
        await client.post("/videos/extensions", json=body), 400, param="video", code="extension_limit_reached"
    )


@pytest.mark.anyio
async def test_an_extended_video_is_at_most_120_seconds(client: httpx2.AsyncClient, clock: FakeClock) -> None:
    video = await completed(client, clock, seconds="20")
    for _ in range(5):
        video = await completed(client, clock, "/videos/extensions", seconds="20", video={"id": video["id"]})
    assert video["seconds"] == "120"
    too_long = await client.post(
        "/videos/extensions", json={"prompt": "x", "seconds": "4", "video": {"id": video["id"]}}
    )
    assert_error(too_long, 400, param="seconds", code="extension_too_long")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"seconds": 4}, "seconds", "invalid_type"),
        ({}, "seconds", "missing_required_parameter"),
        (
            {"seconds": "4", "input_reference": {"image_url": "https://x/y.png"}},
            "input_reference",
            "unknown_parameter",
        ),
        ({"seconds": "4", "characters": [{"id": "char_x"}]}, "characters", "unknown_parameter"),
    ],
)
async def test_an_extension_refuses_bad_seconds_references_and_characters(
    client: httpx2.AsyncClient, clock: FakeClock, body: dict[str, Any], param: str, code: str
) -> None:
    source = await completed(client, clock)
    response = await client.post(
        "/videos/extensions", json={"prompt": "x", "video": {"id": source["id"]}, **body}
    )
    assert_error(response, 400, param=param, code=code)


@pytest.mark.anyio
async def test_a_character_is_made_from_a_two_to_four_second_clip(
    client: httpx2.AsyncClient, clock: FakeClock, tmp_path: Path
) -> None:
    three = clip(tmp_path / "three.mp4", seconds=3)
    made = await client.post(
        "/videos/characters", data={"name": "Pip the crane"}, files={"video": ("c.mp4", three, "video/mp4")}
    )
    assert made.status_code == 200, made.text
    character = made.json()
    assert character["id"].startswith("char_")
    assert (character["object"], character["name"], character["created_at"]) == (
        "character",
        "Pip the crane",
        int(clock.now()),
    )
    assert (await client.get(f"/videos/characters/{character['id']}")).json() == character

    for seconds in (1, 5):
        data = clip(tmp_path / f"{seconds}.mp4", seconds=seconds)
        refused = await client.post(
            "/videos/characters", data={"name": "x"}, files={"video": ("c.mp4", data, "video/mp4")}
        )
        assert_error(refused, 400, param="video", code="invalid_video_duration")
        assert f"{seconds:.2f} s" in refused.json()["error"]["message"]


@pytest.mark.anyio
async def test_a_character_needs_multipart_a_name_and_a_video(
    client: httpx2.AsyncClient, tmp_path: Path
) -> None:
    as_json = await client.post("/videos/characters", json={"name": "Pip", "video": "base64..."})
    assert_error(as_json, 400, param=None, code="unsupported_content_type")
    three = clip(tmp_path / "three.mp4", seconds=3)
    no_name = await client.post("/videos/characters", files={"video": ("c.mp4", three, "video/mp4")})
    assert_error(no_name, 400, param="name", code="missing_required_parameter")
    long_name = await client.post(
        "/videos/characters", data={"name": "x" * 81}, files={"video": ("c.mp4", three, "video/mp4")}
    )
    assert_error(long_name, 400, param="name", code="string_above_max_length")
    no_video = await client.post("/videos/characters", data={"name": "Pip"}, files=_ForceMultipart())
    assert_error(no_video, 400, param="video", code="missing_required_parameter")


@pytest.mark.anyio
async def test_a_video_uses_characters_named_verbatim_in_its_prompt(
    client: httpx2.AsyncClient, clock: FakeClock, tmp_path: Path
) -> None:
    three = clip(tmp_path / "three.mp4", seconds=3)
    made = await client.post(
        "/videos/characters", data={"name": "Pip"}, files={"video": ("c.mp4", three, "video/mp4")}
    )
    ref = [{"id": made.json()["id"]}]
    unnamed = await client.post("/videos", json={"prompt": "a crane dances", "characters": ref})
    assert_error(unnamed, 400, param="characters[0].id", code="character_not_in_prompt")
    named = await client.post("/videos", json={"prompt": "Pip dances in the rain", "characters": ref})
    assert named.status_code == 200, named.text
    clock.advance(LONGEST_RENDER)
    assert await duration_of(client, named.json()["id"], tmp_path) == (720, 1280, 4.0)


class _ForceMultipart(dict[str, Any]):
    """No files, yet multipart, as the openai SDK sends it."""

    def __bool__(self) -> bool:
        return True
