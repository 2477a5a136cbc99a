"""The emulator over ASGI: lifecycle, validation, listing, downloads, references, auth, restart."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import httpx2
import pytest
from PIL import Image

from sora_mcp import catalog
from sora_mcp.clock import FakeClock
from sora_mcp.emulator.app import create_app
from sora_mcp.emulator.validation import assign_form_value
from sora_mcp.media.video import frame_at, probe

# sora-2, 4 s, at the default speed of 20: 8 s/s * 4 s / 20.
RENDER = catalog.estimate_render_seconds("sora-2", 4) / 20


class ForceMultipart(dict[str, Any]):
    """No files, yet multipart: what the openai SDK sends for a create without an upload."""

    def __bool__(self) -> bool:
        return True


def png(size: tuple[int, int], colour: tuple[int, int, int] = (10, 200, 30), fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format=fmt)
    return out.getvalue()


def assert_error(response: httpx2.Response, status: int, *, param: str | None, code: str | None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    assert (error["param"], error["code"]) == (param, code)
    assert response.headers["x-request-id"].startswith("req_")


async def create(client: httpx2.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post("/videos", json={"prompt": "a red fox in snow", **fields})
    assert response.status_code == 200, response.text
    video: dict[str, Any] = response.json()
    return video


@pytest.mark.anyio
async def test_a_job_is_queued_then_in_progress_then_completed_as_the_clock_advances(
    client: httpx2.AsyncClient, clock: FakeClock
) -> None:
    start = clock.now()
    video = await create(client)
    assert (video["status"], video["progress"], video["completed_at"]) == ("queued", 0, None)
    assert (video["seconds"], video["size"], video["model"]) == ("4", "720x1280", "sora-2")

    seen = []
    for _ in range(9):
        clock.advance(RENDER / 10)
        current = (await client.get(f"/videos/{video['id']}")).json()
        seen.append((current["status"], current["progress"]))
    assert all(status == "in_progress" and 1 <= progress <= 99 for status, progress in seen)
    assert [p for _, p in seen] == sorted(p for _, p in seen)

    clock.advance(RENDER)
    done = (await client.get(f"/videos/{video['id']}")).json()
    assert (done["status"], done["progress"], done["error"]) == ("completed", 100, None)
    assert (done["created_at"], done["completed_at"]) == (int(start), int(start + RENDER))
    assert done["expires_at"] == done["completed_at"] + 3600


@pytest.mark.anyio
async def test_every_video_answer_carries_a_poll_hint_and_a_request_id(client: httpx2.AsyncClient) -> None:
    response = await client.post("/videos", json={"prompt": "a boat"})
    again = await client.get(f"/videos/{response.json()['id']}")
    for answer in (response, again):
        assert int(answer.headers["openai-poll-after-ms"]) == round(RENDER * 1000 / 10)
        assert answer.headers["x-request-id"].startswith("req_")
    assert response.headers["x-request-id"] != again.headers["x-request-id"]


@pytest.mark.anyio
async def test_a_prompt_with_a_fail_marker_ends_failed_with_that_code(
    client: httpx2.AsyncClient, clock: FakeClock
) -> None:
    video = await create(client, prompt="a crowd [fail:moderation_blocked]")
    clock.advance(RENDER / 2)
    assert (await client.get(f"/videos/{video['id']}")).json()["status"] == "in_progress"
    clock.advance(RENDER)
    failed = (await client.get(f"/videos/{video['id']}")).json()
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "moderation_blocked"
    assert failed["error"]["message"]
    content = await client.get(f"/videos/{video['id']}/content")
    assert_error(content, 404, param=None, code="video_failed")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"seconds": 4}, "seconds", "invalid_type"),
        ({"seconds": "5"}, "seconds", "invalid_value"),
        ({"prompt": ""}, "prompt", "string_below_min_length"),
        ({"prompt": "x" * (catalog.PROMPT_MAX_CHARS + 1)}, "prompt", "string_above_max_length"),
        ({"prompt": 7}, "prompt", "invalid_type"),
        ({"model": "sora-3"}, "model", "invalid_value"),
        ({"size": "1792x1024"}, "size", "invalid_value"),
        ({"size": "640x480", "model": "sora-2-pro"}, "size", "invalid_value"),
        ({"n": 2}, "n", "unknown_parameter"),
        ({"image_input": "x"}, "image_input", "unknown_parameter"),
        (
            {"input_reference": {"image_url": "http://example.com/a.png"}},
            "input_reference.image_url",
            "invalid_image_url",
        ),
        (
            {"input_reference": {"image_url": "https://a/b.png", "file_id": "file-x"}},
            "input_reference",
            "invalid_value",
        ),
        ({"input_reference": {"file_id": "file-missing"}}, "input_reference.file_id", "file_not_found"),
        (
            {"input_reference": {"image_url": "data:image/png;base64,@@@"}},
            "input_reference.image_url",
            "invalid_image_url",
        ),
        (
            {"characters": [{"id": "char_a"}, {"id": "char_b"}, {"id": "char_c"}]},
            "characters",
            "array_above_max_length",
        ),
        ({"characters": [{"id": "char_missing"}]}, "characters[0].id", "character_not_found"),
        ({"characters": "char_a"}, "characters", "invalid_type"),
    ],
)
async def test_create_refuses_what_the_service_refuses_with_param_and_code(
    client: httpx2.AsyncClient, fields: dict[str, Any], param: str, code: str
) -> None:
    response = await client.post("/videos", json={"prompt": "a red fox", **fields})
    assert_error(response, 400, param=param, code=code)


@pytest.mark.anyio
async def test_an_integer_seconds_is_refused_with_the_services_message(client: httpx2.AsyncClient) -> None:
    response = await client.post("/videos", json={"prompt": "a fox", "seconds": 8})
    assert response.json()["error"]["message"].startswith(
        "Invalid type for 'seconds': expected one of '4', '8', '12', '16', or '20'"
    )


@pytest.mark.anyio
async def test_a_missing_prompt_or_an_unparseable_body_is_a_400(client: httpx2.AsyncClient) -> None:
    assert_error(
        await client.post("/videos", json={}), 400, param="prompt", code="missing_required_parameter"
    )
    garbled = await client.post("/videos", content=b"{nope", headers={"content-type": "application/json"})
    assert_error(garbled, 400, param=None, code=None)
    text = await client.post("/videos", content=b"prompt=x", headers={"content-type": "text/plain"})
    assert_error(text, 400, param=None, code="unsupported_content_type")


@pytest.mark.anyio
@pytest.mark.parametrize(("model", "size"), [("sora-2-pro", "1792x1024"), ("sora-2-2025-12-08", "1280x720")])
async def test_each_model_takes_its_own_sizes_and_dated_snapshots_are_echoed(
    client: httpx2.AsyncClient, model: str, size: str
) -> None:
    video = await create(client, model=model, size=size, seconds="12")
    assert (video["model"], video["size"], video["seconds"]) == (model, size, "12")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/videos/video_missing"),
        ("DELETE", "/videos/video_missing"),
        ("GET", "/videos/video_missing/content"),
        ("POST", "/videos/video_missing/remix"),
        ("GET", "/videos/characters/char_missing"),
        ("GET", "/files/file-missing"),
        ("GET", "/files/file-missing/content"),
        ("GET", "/batches/batch_missing"),
        ("POST", "/batches/batch_missing/cancel"),
        ("GET", "/videos/..%2F..%2Fetc"),
    ],
)
async def test_unknown_ids_answer_404_in_the_envelope(
    client: httpx2.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path, json={"prompt": "x"} if method == "POST" else None)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.headers["x-request-id"].startswith("req_")


@pytest.mark.anyio
async def test_an_unknown_path_is_a_404_in_the_envelope(client: httpx2.AsyncClient) -> None:
    assert_error(await client.get("/videos/generations/x/y"), 404, param=None, code="unknown_url")


@pytest.mark.anyio
async def test_the_list_pages_with_after_and_limit_in_both_orders(
    client: httpx2.AsyncClient, clock: FakeClock
) -> None:
    ids = []
    for index in range(5):
        ids.append((await create(client, prompt=f"clip {index}"))["id"])
        clock.advance(1)
    first = (await client.get("/videos", params={"limit": 2})).json()
    assert first["object"] == "list"
    assert [v["id"] for v in first["data"]] == ids[::-1][:2]
    assert (first["first_id"], first["last_id"], first["has_more"]) == (ids[4], ids[3], True)
    rest = (await client.get("/videos", params={"limit": 10, "after": first["last_id"]})).json()
    assert [v["id"] for v in rest["data"]] == ids[::-1][2:]
    assert rest["has_more"] is False
    ascending = (await client.get("/videos", params={"order": "asc", "limit": 3})).json()
    assert [v["id"] for v in ascending["data"]] == ids[:3]
    default = (await client.get("/videos")).json()
    assert len(default["data"]) == 5
    empty = (await client.get("/videos", params={"limit": 0})).json()
    assert (empty["data"], empty["first_id"], empty["has_more"]) == ([], None, True)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": 101}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"order": "newest"}, "order"),
        ({"after": "video_unknown"}, "after"),
    ],
)
async def test_the_list_refuses_bad_paging_parameters(
    client: httpx2.AsyncClient, params: dict[str, Any], param: str
) -> None:
    response = await client.get("/videos", params=params)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


@pytest.mark.anyio
async def test_content_is_404_until_completed_then_an_mp4_of_exact_size_and_duration(
    client: httpx2.AsyncClient, clock: FakeClock, tmp_path: Path
) -> None:
    video = await create(client, size="1280x720")
    assert_error(await client.get(f"/videos/{video['id']}/content"), 404, param=None, code="video_not_ready")
    clock.advance(RENDER)

    mp4 = await client.get(f"/videos/{video['id']}/content")
    assert mp4.headers["content-type"] == "video/mp4"
    (tmp_path / "v.mp4").write_bytes(mp4.content)
    info = probe(tmp_path / "v.mp4")
    assert (info.width, info.height, info.seconds, info.codec) == (1280, 720, 4.0, "h264")

    thumbnail = await client.get(f"/videos/{video['id']}/content", params={"variant": "thumbnail"})
    assert thumbnail.headers["content-type"] == "image/webp"
    assert (thumbnail.content[:4], thumbnail.content[8:12]) == (b"RIFF", b"WEBP")
    sheet = await client.get(f"/videos/{video['id']}/content", params={"variant": "spritesheet"})
    assert sheet.headers["content-type"] == "image/jpeg"
    assert sheet.content[:3] == b"\xff\xd8\xff"
    again = await client.get(f"/videos/{video['id']}/content")
    assert again.content == mp4.content
    bad = await client.get(f"/videos/{video['id']}/content", params={"variant": "gif"})
    assert_error(bad, 400, param="variant", code="invalid_value")


@pytest.mark.anyio
async def test_content_is_gone_once_the_assets_expire(client: httpx2.AsyncClient, clock: FakeClock) -> None:
    video = await create(client)
    clock.advance(RENDER + 3601)
    assert (await client.get(f"/videos/{video['id']}")).json()["status"] == "completed"
    assert_error(await client.get(f"/videos/{video['id']}/content"), 410, param=None, code="video_expired")


@pytest.mark.anyio
async def test_delete_removes_the_job(client: httpx2.AsyncClient) -> None:
    video = await create(client)
    deleted = await client.delete(f"/videos/{video['id']}")
    assert deleted.json() == {"id": video["id"], "object": "video.deleted", "deleted": True}
    assert (await client.get(f"/videos/{video['id']}")).status_code == 404
    assert (await client.get("/videos")).json()["data"] == []


@pytest.mark.anyio
async def test_an_uploaded_image_reference_becomes_the_first_frame(
    client: httpx2.AsyncClient, clock: FakeClock, tmp_path: Path
) -> None:
    response = await client.post(
        "/videos",
        data={"prompt": "the meadow comes alive", "seconds": "4"},
        files={"input_reference": ("meadow.png", png((720, 1280)), "image/png")},
    )
    assert response.status_code == 200, response.text
    clock.advance(RENDER)
    mp4 = await client.get(f"/videos/{response.json()['id']}/content")
    (tmp_path / "v.mp4").write_bytes(mp4.content)
    first = frame_at(tmp_path / "v.mp4", 0.0)
    red, green, blue = first.getpixel((360, 640))  # type: ignore[misc]
    assert max(abs(red - 10), abs(green - 200), abs(blue - 30)) < 12


@pytest.mark.anyio
async def test_an_image_reference_must_be_jpeg_png_or_webp_of_the_exact_size(
    client: httpx2.AsyncClient,
) -> None:
    wrong_size = await client.post(
        "/videos", data={"prompt": "p"}, files={"input_reference": ("a.png", png((640, 480)), "image/png")}
    )
    assert_error(wrong_size, 400, param="input_reference", code="invalid_image_dimensions")
    assert "640x480" in wrong_size.json()["error"]["message"]
    gif = await client.post(
        "/videos",
        data={"prompt": "p"},
        files={"input_reference": ("a.png", png((720, 1280), fmt="GIF"), "image/png")},
    )
    assert_error(gif, 400, param="input_reference", code="invalid_image_format")
    both = await client.post(
        "/videos",
        data={"prompt": "p", "input_reference[image_url]": "https://example.com/a.png"},
        files={"input_reference": ("a.png", png((720, 1280)), "image/png")},
    )
    assert_error(both, 400, param="input_reference", code="invalid_value")


@pytest.mark.anyio
async def test_data_url_https_url_and_file_id_references_are_accepted(client: httpx2.AsyncClient) -> None:
    webp = png((1280, 720), fmt="WEBP")
    data_url = "data:image/webp;base64," + base64.b64encode(webp).decode()
    assert (await create(client, size="1280x720", input_reference={"image_url": data_url}))[
        "size"
    ] == "1280x720"
    await create(client, input_reference={"image_url": "https://example.com/cannot-fetch.jpg"})
    uploaded = await client.post(
        "/files",
        data={"purpose": "vision"},
        files={"file": ("ref.jpg", png((720, 1280), fmt="JPEG"), "image/jpeg")},
    )
    assert uploaded.json()["purpose"] == "vision"
    await create(client, input_reference={"file_id": uploaded.json()["id"]})
    small = await client.post(
        "/files",
        data={"purpose": "vision"},
        files={"file": ("s.jpg", png((64, 64), fmt="JPEG"), "image/jpeg")},
    )
    refused = await client.post(
        "/videos", json={"prompt": "p", "input_reference": {"file_id": small.json()["id"]}}
    )
    assert_error(refused, 400, param="input_reference.file_id", code="invalid_image_dimensions")


@pytest.mark.anyio
async def test_multipart_bodies_use_the_sdks_bracket_fields(client: httpx2.AsyncClient) -> None:
    response = await client.post(
        "/videos",
        data={"prompt": "p", "seconds": "8", "input_reference[image_url]": "https://example.com/x.png"},
        files=ForceMultipart(),
    )
    assert response.status_code == 200, response.text
    assert response.json()["seconds"] == "8"


def test_bracket_keys_decode_to_nested_objects_and_arrays() -> None:
    fields: dict[str, Any] = {}
    for key, value in [
        ("prompt", "p"),
        ("video[id]", "video_1"),
        ("characters[][id]", "char_a"),
        ("characters[][id]", "char_b"),
        ("tags[]", "x"),
        ("tags[]", "y"),
        ("matrix[1][name]", "second"),
    ]:
        assign_form_value(fields, key, value)
    assert fields == {
        "prompt": "p",
        "video": {"id": "video_1"},
        "characters": [{"id": "char_a"}, {"id": "char_b"}],
        "tags": ["x", "y"],
        "matrix": [None, {"name": "second"}],
    }


@pytest.mark.anyio
async def test_a_wrong_or_missing_api_key_is_a_401(tmp_path: Path, clock: FakeClock) -> None:
    app = create_app(root=tmp_path / "emulator", clock=clock, api_key="sk-right-key-123")
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://emulator/v1") as anonymous:
        assert_error(await anonymous.get("/videos"), 401, param=None, code="missing_api_key")
        wrong = await anonymous.get("/videos", headers={"authorization": "Bearer sk-wrong-key-456"})
        assert_error(wrong, 401, param=None, code="invalid_api_key")
        assert "sk-wrong-key-456" not in wrong.text
        right = await anonymous.get("/videos", headers={"authorization": "Bearer sk-right-key-123"})
        assert right.status_code == 200


@pytest.mark.anyio
async def test_a_new_app_on_the_same_root_sees_earlier_jobs(tmp_path: Path, clock: FakeClock) -> None:
    first = create_app(root=tmp_path / "emulator", clock=clock)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=first), base_url="http://e/v1"
    ) as client:
        video = await create(client)
    clock.advance(RENDER)
    second = create_app(root=tmp_path / "emulator", clock=clock)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=second), base_url="http://e/v1"
    ) as client:
        again = (await client.get(f"/videos/{video['id']}")).json()
        listed = (await client.get("/videos")).json()
    assert (again["status"], again["created_at"]) == ("completed", video["created_at"])
    assert [v["id"] for v in listed["data"]] == [video["id"]]


@pytest.mark.anyio
async def test_the_path_prefix_is_configurable(tmp_path: Path, clock: FakeClock) -> None:
    app = create_app(root=tmp_path / "emulator", clock=clock, path_prefix="/openai/v1")
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://e/openai/v1"
    ) as client:
        await create(client)
        assert (await client.get("http://e/v1/videos")).status_code == 404


@pytest.mark.anyio
async def test_an_internal_error_is_a_500_in_the_envelope_with_a_request_id(
    tmp_path: Path, clock: FakeClock
) -> None:
    root = tmp_path / "emulator"
    app = create_app(root=root, clock=clock, render_fps=4)
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://emulator/v1") as client:
        video = await create(client, input_reference={"image_url": "https://example.com/a.png"})
        for reference in (root / "inputs").iterdir():
            reference.unlink()  # the job's first frame vanishes behind the emulator's back
        clock.advance(RENDER)
        broken = await client.get(f"/videos/{video['id']}/content")
    assert_error(broken, 500, param=None, code=None)
    assert broken.json()["error"]["type"] == "server_error"


@pytest.mark.parametrize(
    "settings", [{"speed": 0}, {"render_fps": 0}, {"path_prefix": "v1"}, {"path_prefix": "/v1/"}]
)
def test_create_app_refuses_nonsense_settings(tmp_path: Path, settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        create_app(root=tmp_path, **settings)
