"""VideosClient over httpx2.MockTransport: request shapes, the error ladder, read retries,
billable POSTs sent exactly once, and atomic downloads."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from PIL import Image

from sora_mcp.api.client import FileRef, ImageUpload, ImageURL, VideosClient
from sora_mcp.api.polling import wait_for_video
from sora_mcp.api.profile import EMULATOR, OPENAI, PROFILES, BackendProfile
from sora_mcp.api.retry import RetryPolicy
from sora_mcp.clock import FakeClock
from sora_mcp.config import PROFILE_NAMES
from sora_mcp.emulator.app import create_app
from sora_mcp.emulator.faults import FaultConfig
from sora_mcp.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    GoneError,
    InvalidRequest,
    NotFoundError,
    OutcomeUnknown,
    RateLimitError,
    ServerError,
)

KEY = "sk-test-SECRET-0123456789"
Step = Callable[[httpx2.Request], httpx2.Response]


def video(video_id: str = "video_1", status: str = "queued", **fields: Any) -> dict[str, Any]:
    return {"id": video_id, "object": "video", "status": status, "progress": 0, **fields}


def ok(body: Any = None, *, status: int = 200, headers: dict[str, str] | None = None) -> Step:
    return lambda request: httpx2.Response(status, json=video() if body is None else body, headers=headers)


def fail(status: int, body: Any = None, *, headers: dict[str, str] | None = None) -> Step:
    if isinstance(body, str):
        return lambda request: httpx2.Response(status, text=body, headers=headers)
    envelope = body or {"error": {"message": "nope", "type": "server_error", "code": None, "param": None}}
    return lambda request: httpx2.Response(status, json=envelope, headers=headers)


def raises(exc_type: type[httpx2.RequestError]) -> Step:
    def step(request: httpx2.Request) -> httpx2.Response:
        raise exc_type("simulated", request=request)

    return step


class Backend:
    """Answers with scripted steps in order, recording every request; running out fails."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        assert self.steps, f"unexpected request {request.method} {request.url}"
        return self.steps.pop(0)(request)

    def count(self, method: str) -> int:
        return sum(1 for request in self.requests if request.method == method)


@asynccontextmanager
async def client_for(
    backend: Backend, *, clock: FakeClock | None = None, **options: Any
) -> AsyncIterator[VideosClient]:
    options.setdefault("api_key", KEY)
    transport = httpx2.MockTransport(backend)
    async with httpx2.AsyncClient(transport=transport, base_url="http://backend/v1") as http:
        yield VideosClient(http, clock=clock or FakeClock(), **options)


def sent_json(request: httpx2.Request) -> Any:
    return json.loads(request.content)


# --- request shapes -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_create_sends_json_with_string_seconds_character_ids_and_an_image_url() -> None:
    backend = Backend(ok())
    async with client_for(backend) as client:
        await client.create_video(
            prompt="a fox",
            model="sora-2",
            size="1280x720",
            seconds=8,
            input_reference=ImageURL("https://example.com/a.png"),
            characters=["char_1", "char_2"],
            extra={"quality": "high", "prompt": "ignored"},
        )

    (request,) = backend.requests
    assert (request.method, request.url.path) == ("POST", "/v1/videos")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert sent_json(request) == {
        "prompt": "a fox",
        "model": "sora-2",
        "size": "1280x720",
        "seconds": "8",
        "input_reference": {"image_url": "https://example.com/a.png"},
        "characters": [{"id": "char_1"}, {"id": "char_2"}],
        "quality": "high",
    }


@pytest.mark.anyio
async def test_create_sends_a_file_reference_as_file_id() -> None:
    backend = Backend(ok())
    async with client_for(backend) as client:
        await client.create_video(prompt="p", input_reference=FileRef("file_9"))

    assert sent_json(backend.requests[0])["input_reference"] == {"file_id": "file_9"}


@pytest.mark.anyio
async def test_create_with_an_uploaded_image_is_multipart_with_sdk_style_field_names() -> None:
    backend = Backend(ok())
    upload = ImageUpload(content=b"\x89PNG-bytes", filename="frame.png", mime_type="image/png")
    async with client_for(backend) as client:
        await client.create_video(prompt="a fox", seconds="4", input_reference=upload, characters=["c1"])

    request = backend.requests[0]
    body = request.content
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert b'name="prompt"\r\n\r\na fox\r\n' in body
    assert b'name="seconds"\r\n\r\n4\r\n' in body
    assert b'name="characters[][id]"\r\n\r\nc1\r\n' in body
    assert (
        b'name="input_reference"; filename="frame.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG-bytes'
        in body
    )
    assert "bytes" in repr(upload)
    assert "PNG-bytes" not in repr(upload)


@pytest.mark.anyio
async def test_a_multipart_only_profile_with_integer_seconds_sends_form_fields() -> None:
    profile = BackendProfile(name="strict", create_multipart_only=True, seconds_encoding="int")
    backend = Backend(ok())
    async with client_for(backend, profile=profile) as client:
        await client.create_video(
            prompt="p", seconds="12", input_reference=ImageURL("data:image/png;base64,AA")
        )

    body = backend.requests[0].content
    assert b'name="seconds"\r\n\r\n12\r\n' in body
    assert b'name="input_reference[image_url]"\r\n\r\ndata:image/png;base64,AA\r\n' in body


@pytest.mark.anyio
async def test_an_integer_seconds_profile_sends_a_json_number_and_rejects_non_numbers_before_sending() -> (
    None
):
    profile = BackendProfile(name="ints", seconds_encoding="int")
    backend = Backend(ok())
    async with client_for(backend, profile=profile) as client:
        await client.extend_video("video_1", prompt="more", seconds="8")
        with pytest.raises(InvalidRequest) as caught:
            await client.create_video(prompt="p", seconds="eight")

    assert sent_json(backend.requests[0]) == {"prompt": "more", "seconds": 8, "video": {"id": "video_1"}}
    assert caught.value.param == "seconds"
    assert len(backend.requests) == 1


@pytest.mark.anyio
async def test_remix_edit_and_extend_post_to_their_own_endpoints() -> None:
    backend = Backend(ok(), ok(), ok())
    async with client_for(backend) as client:
        await client.remix_video("video_1", prompt="at night")
        await client.edit_video("video_1", prompt="add rain")
        await client.extend_video("video_1", prompt="keep going", seconds=4)

    paths = [request.url.path for request in backend.requests]
    assert paths == ["/v1/videos/video_1/remix", "/v1/videos/edits", "/v1/videos/extensions"]
    assert sent_json(backend.requests[1]) == {"prompt": "add rain", "video": {"id": "video_1"}}
    assert sent_json(backend.requests[2]) == {
        "prompt": "keep going",
        "seconds": "4",
        "video": {"id": "video_1"},
    }


@pytest.mark.anyio
async def test_ids_are_quoted_as_one_opaque_path_segment() -> None:
    backend = Backend(ok(video("dmlk/ZW8=")))
    async with client_for(backend) as client:
        await client.retrieve_video("dmlk/ZW8=")

    assert backend.requests[0].url.raw_path == b"/v1/videos/dmlk%2FZW8%3D"


@pytest.mark.parametrize(
    ("profile", "expected_headers", "expected_path", "expected_query"),
    [
        (OPENAI, {"authorization": f"Bearer {KEY}"}, "/v1/videos/v", {}),
        (EMULATOR, {"authorization": f"Bearer {KEY}"}, "/v1/videos/v", {}),
        (
            BackendProfile(
                name="azure",
                auth_header="api-key",
                auth_scheme=None,
                path_prefix="/openai",
                extra_query={"api-version": "preview"},
                extra_headers={"x-client": "sora-mcp"},
            ),
            {"api-key": KEY, "x-client": "sora-mcp"},
            "/v1/openai/videos/v",
            {"api-version": "preview"},
        ),
        (
            BackendProfile(name="litellm", auth_header="x-litellm-api-key", auth_scheme="Bearer"),
            {"x-litellm-api-key": f"Bearer {KEY}"},
            "/v1/videos/v",
            {},
        ),
    ],
)
@pytest.mark.anyio
async def test_auth_header_path_prefix_and_extra_query_follow_the_profile(
    profile: BackendProfile,
    expected_headers: dict[str, str],
    expected_path: str,
    expected_query: dict[str, str],
) -> None:
    backend = Backend(ok(video("v")))
    async with client_for(backend, profile=profile) as client:
        await client.retrieve_video("v")

    request = backend.requests[0]
    for name, value in expected_headers.items():
        assert request.headers[name] == value
    if "authorization" not in expected_headers:
        assert "authorization" not in request.headers
    assert request.url.path == expected_path
    assert dict(request.url.params) == expected_query


@pytest.mark.anyio
async def test_without_an_api_key_no_auth_header_is_sent() -> None:
    backend = Backend(ok())
    async with client_for(backend, api_key=None) as client:
        await client.retrieve_video("video_1")

    assert "authorization" not in backend.requests[0].headers


def test_the_profiles_registry_holds_every_profile_name() -> None:
    assert set(PROFILES) == set(PROFILE_NAMES)
    assert PROFILES["openai"] == OPENAI and PROFILES["emulator"] == EMULATOR
    assert OPENAI.normalise_status("Processing") == "in_progress"
    assert OPENAI.normalise_status("brand_new") == "brand_new"
    assert not VideosClient(
        httpx2.AsyncClient(), profile=BackendProfile(capabilities=frozenset())
    ).capabilities.has("remix")


@pytest.mark.anyio
async def test_statuses_are_normalised_in_single_videos_and_in_lists() -> None:
    page = {"object": "list", "data": [video("a", "succeeded"), video("b", "pending")], "has_more": False}
    backend = Backend(ok(video("v", "processing")), ok(page))
    async with client_for(backend) as client:
        single = await client.retrieve_video("v")
        listed = await client.list_videos(limit=2, order="asc", after="z")

    assert single.status == "in_progress"
    assert [item.status for item in listed.data] == ["completed", "queued"]
    assert dict(backend.requests[1].url.params) == {"limit": "2", "order": "asc", "after": "z"}


@pytest.mark.anyio
async def test_iter_videos_follows_the_cursor_and_stops_at_max_items() -> None:
    first = {"data": [video("a"), video("b")], "last_id": "b", "has_more": True}
    second = {"data": [video("c"), video("d")], "last_id": "d", "has_more": True}
    backend = Backend(ok(first), ok(second))
    async with client_for(backend) as client:
        ids = [item.id async for item in client.iter_videos(page_size=2, max_items=3)]

    assert ids == ["a", "b", "c"]
    assert [request.url.params.get("after") for request in backend.requests] == [None, "b"]


@pytest.mark.anyio
async def test_iter_videos_ends_when_a_backend_cursor_does_not_advance() -> None:
    stuck = {"data": [video("a")], "last_id": "a", "has_more": True}
    backend = Backend(ok(stuck), ok(stuck))
    async with client_for(backend) as client:
        ids = [item.id async for item in client.iter_videos()]

    assert ids == ["a", "a"]
    assert len(backend.requests) == 2


@pytest.mark.anyio
async def test_the_poll_after_header_is_kept_in_seconds() -> None:
    backend = Backend(ok(headers={"openai-poll-after-ms": "2500"}), ok())
    async with client_for(backend) as client:
        await client.retrieve_video("video_1")
        assert client.last_poll_after == 2.5
        _, hint = await client.retrieve_video_with_hint("video_1")

    assert hint is None
    assert client.last_poll_after is None


@pytest.mark.anyio
async def test_a_profile_without_a_capability_refuses_before_sending_anything() -> None:
    backend = Backend()
    profile = BackendProfile(name="bare", capabilities=frozenset({"list"}))
    async with client_for(backend, profile=profile) as client:
        for call in (
            client.remix_video("v", prompt="p"),
            client.delete_video("v"),
            client.download_content("v", Path("unused"), variant="thumbnail"),
            client.create_batch(input_file_id="f"),
        ):
            with pytest.raises(InvalidRequest):
                await call

    assert backend.requests == []


@pytest.mark.anyio
async def test_delete_accepts_an_empty_answer_as_done() -> None:
    backend = Backend(lambda request: httpx2.Response(204), ok({"id": "v2", "object": "video.deleted"}))
    async with client_for(backend) as client:
        first = await client.delete_video("v1")
        second = await client.delete_video("v2")

    assert (first.id, first.deleted, second.id) == ("v1", True, "v2")


@pytest.mark.anyio
async def test_characters_files_and_batches_use_their_wire_shapes(tmp_path: Path) -> None:
    clip = tmp_path / "fox.mp4"
    clip.write_bytes(b"mp4-bytes")
    batch = {"id": "batch_1", "object": "batch", "status": "validating"}
    backend = Backend(
        ok({"id": "char_1", "name": "Foxy"}),
        ok({"id": "char_1", "name": "Foxy", "created_at": 1}),
        ok({"id": "file_1", "object": "file", "purpose": "batch"}),
        ok({"id": "file_1", "object": "file"}),
        lambda request: httpx2.Response(200, content=b'{"custom_id": "a"}\n'),
        ok(batch),
        ok(batch),
        ok({**batch, "status": "cancelling"}),
    )
    async with client_for(backend) as client:
        character = await client.create_character(name="Foxy", video=clip)
        assert (await client.get_character("char_1")).created_at == 1
        uploaded = await client.upload_file(content=b'{"custom_id": "a"}\n', filename="in.jsonl")
        assert (await client.retrieve_file("file_1")).id == "file_1"
        assert await client.file_content("file_1") == b'{"custom_id": "a"}\n'
        await client.create_batch(input_file_id=uploaded.id, metadata={"run": "1"})
        assert (await client.retrieve_batch("batch_1")).status == "validating"
        cancelled = await client.cancel_batch("batch_1")

    assert (character.id, cancelled.status) == ("char_1", "cancelling")
    character_body = backend.requests[0].content
    assert b'name="name"\r\n\r\nFoxy\r\n' in character_body
    assert b'name="video"; filename="fox.mp4"\r\nContent-Type: video/mp4\r\n\r\nmp4-bytes' in character_body
    assert (
        b'name="file"; filename="in.jsonl"\r\nContent-Type: application/jsonl' in backend.requests[2].content
    )
    assert sent_json(backend.requests[5]) == {
        "input_file_id": "file_1",
        "endpoint": "/v1/videos",
        "completion_window": "24h",
        "metadata": {"run": "1"},
    }
    assert [r.url.path for r in backend.requests][-4:] == [
        "/v1/files/file_1/content",
        "/v1/batches",
        "/v1/batches/batch_1",
        "/v1/batches/batch_1/cancel",
    ]


# --- the error ladder -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (404, NotFoundError),
        (410, GoneError),
        (418, APIStatusError),
    ],
)
@pytest.mark.anyio
async def test_error_answers_climb_the_one_ladder_keeping_the_envelope_and_request_id(
    status: int, error_class: type[APIStatusError]
) -> None:
    error_body = {"message": "Bad 'seconds'", "type": "invalid_request_error", "param": "seconds"}
    envelope = {"error": {**error_body, "code": "invalid_type"}}
    backend = Backend(fail(status, envelope, headers={"x-request-id": "req_42"}))
    async with client_for(backend) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.retrieve_video("video_1")

    error = caught.value
    assert type(error) is error_class
    assert (error.status_code, error.code, error.param, error.error_type, error.request_id) == (
        status,
        "invalid_type",
        "seconds",
        "invalid_request_error",
        "req_42",
    )
    assert len(backend.requests) == 1


@pytest.mark.parametrize(
    ("body", "expected_in_message", "expected_code"),
    [
        ("<html>Bad Gateway</html>", "<html>Bad Gateway</html>", None),
        ("", "no error message", None),
        ({"detail": "model not found"}, "model not found", None),
        ({"error": "quota exceeded", "code": 7}, "quota exceeded", "7"),
        ({"error": {"message": "m", "code": 123}}, "m", "123"),
        ([1, 2], "[1, 2]", None),
    ],
)
@pytest.mark.anyio
async def test_error_bodies_that_are_not_the_envelope_are_read_leniently(
    body: Any, expected_in_message: str, expected_code: str | None
) -> None:
    backend = Backend(fail(422, body))
    async with client_for(backend) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.retrieve_video("video_1")

    assert expected_in_message in str(caught.value)
    assert caught.value.code == expected_code


@pytest.mark.anyio
async def test_the_api_key_never_appears_in_errors_or_reprs() -> None:
    echo = {"error": {"message": f"Incorrect API key provided: {KEY}", "code": "invalid_api_key"}}
    backend = Backend(fail(401, echo), *[raises(httpx2.ConnectError)] * 4, raises(httpx2.ReadTimeout))
    async with client_for(backend) as client:
        with pytest.raises(AuthenticationError) as auth:
            await client.retrieve_video("video_1")
        with pytest.raises(APIConnectionError) as connection:
            await client.retrieve_video("video_1")
        with pytest.raises(OutcomeUnknown) as unknown:
            await client.create_video(prompt="p")
        client_repr = repr(client)

    for error in (auth.value, connection.value, unknown.value):
        assert KEY not in str(error)
        assert KEY not in repr(error)
        assert KEY not in str(error.__cause__)
    assert KEY not in client_repr
    assert "backend" in client_repr


@pytest.mark.anyio
async def test_a_success_answer_that_is_not_a_video_is_an_api_error() -> None:
    backend = Backend(lambda request: httpx2.Response(200, text="<html>login</html>"), ok({"no": "id"}))
    async with client_for(backend) as client:
        with pytest.raises(APIError) as not_json:
            await client.retrieve_video("video_1")
        with pytest.raises(APIError) as not_video:
            await client.retrieve_video("video_1")

    assert type(not_json.value) is APIError
    assert type(not_video.value) is APIError


# --- billable POSTs: never retried -------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.anyio
async def test_a_create_answered_5xx_was_sent_exactly_once_and_its_outcome_is_unknown(status: int) -> None:
    backend = Backend(fail(status, headers={"x-request-id": "req_5"}))
    clock = FakeClock()
    async with client_for(backend, clock=clock) as client:
        with pytest.raises(OutcomeUnknown) as caught:
            await client.create_video(prompt="a fox")

    assert backend.count("POST") == 1
    assert isinstance(caught.value.__cause__, ServerError)
    assert caught.value.request_id == "req_5"
    assert clock.slept == []


@pytest.mark.parametrize(
    "exc_type",
    [
        httpx2.ReadTimeout,
        httpx2.WriteTimeout,
        httpx2.ReadError,
        httpx2.WriteError,
        httpx2.RemoteProtocolError,
    ],
)
@pytest.mark.anyio
async def test_a_create_whose_answer_was_lost_was_sent_exactly_once_and_its_outcome_is_unknown(
    exc_type: type[httpx2.RequestError],
) -> None:
    backend = Backend(raises(exc_type))
    async with client_for(backend) as client:
        with pytest.raises(OutcomeUnknown) as caught:
            await client.create_video(prompt="a fox")

    assert backend.count("POST") == 1
    assert isinstance(caught.value.__cause__, exc_type)


@pytest.mark.parametrize(
    ("exc_type", "error_class"),
    [
        (httpx2.ConnectError, APIConnectionError),
        (httpx2.ConnectTimeout, APITimeoutError),
        (httpx2.PoolTimeout, APITimeoutError),
    ],
)
@pytest.mark.anyio
async def test_a_create_that_never_left_is_a_connection_error_and_not_retried(
    exc_type: type[httpx2.RequestError], error_class: type[APIError]
) -> None:
    backend = Backend(raises(exc_type))
    async with client_for(backend) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.create_video(prompt="a fox")

    assert type(caught.value) is error_class
    assert backend.count("POST") == 1


@pytest.mark.anyio
async def test_a_rate_limited_create_is_reported_with_its_retry_after_and_not_retried() -> None:
    backend = Backend(fail(429, headers={"retry-after": "2"}))
    clock = FakeClock()
    async with client_for(backend, clock=clock) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.create_video(prompt="a fox")

    assert caught.value.retry_after == 2.0
    assert backend.count("POST") == 1
    assert clock.slept == []


@pytest.mark.anyio
async def test_a_create_accepted_with_an_unreadable_answer_has_an_unknown_outcome() -> None:
    backend = Backend(lambda request: httpx2.Response(200, text="not json"))
    async with client_for(backend) as client:
        with pytest.raises(OutcomeUnknown):
            await client.create_video(prompt="a fox")

    assert backend.count("POST") == 1


BILLABLE_CALLS: dict[str, Callable[[VideosClient], Any]] = {
    "remix": lambda client: client.remix_video("v", prompt="p"),
    "edit": lambda client: client.edit_video("v", prompt="p"),
    "extend": lambda client: client.extend_video("v", prompt="p", seconds=4),
    "character": lambda client: client.create_character(name="Foxy", video=b"mp4"),
    "batch": lambda client: client.create_batch(input_file_id="file_1"),
}


@pytest.mark.parametrize("call", BILLABLE_CALLS.values(), ids=BILLABLE_CALLS.keys())
@pytest.mark.parametrize("step", [fail(502), raises(httpx2.ReadTimeout)], ids=["502", "read-timeout"])
@pytest.mark.anyio
async def test_every_billable_post_is_sent_exactly_once_whatever_goes_wrong(
    call: Callable[[VideosClient], Any], step: Step
) -> None:
    backend = Backend(step)
    async with client_for(backend) as client:
        with pytest.raises(OutcomeUnknown):
            await call(client)

    assert backend.count("POST") == 1


@pytest.mark.anyio
async def test_non_billable_posts_fail_plainly_without_retrying() -> None:
    backend = Backend(fail(503), raises(httpx2.ReadTimeout))
    async with client_for(backend) as client:
        with pytest.raises(ServerError):
            await client.cancel_batch("batch_1")
        with pytest.raises(APITimeoutError):
            await client.upload_file(content=b"{}", filename="in.jsonl")

    assert backend.count("POST") == 2


# --- downloads --------------------------------------------------------------------------------------


def entries(folder: Path) -> list[Path]:
    return sorted(folder.iterdir())


def streamed(*chunks: bytes, then_fail: bool = False) -> Step:
    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk
        if then_fail:
            raise httpx2.ReadError("connection reset mid-body")

    return lambda request: httpx2.Response(200, content=body(), headers={"content-type": "video/mp4"})


@pytest.mark.anyio
async def test_download_streams_the_asked_variant_to_dest(tmp_path: Path) -> None:
    backend = Backend(streamed(b"RIFF", b"WEBP-data"))
    dest = tmp_path / "out" / "thumb.webp"
    async with client_for(backend) as client:
        result = await client.download_content("video_1", dest, variant="thumbnail")

    assert result == dest
    assert dest.read_bytes() == b"RIFFWEBP-data"
    assert entries(dest.parent) == [dest]
    request = backend.requests[0]
    assert (request.url.path, dict(request.url.params)) == (
        "/v1/videos/video_1/content",
        {"variant": "thumbnail"},
    )


@pytest.mark.anyio
async def test_a_download_cut_midway_leaves_neither_dest_nor_a_temporary(tmp_path: Path) -> None:
    backend = Backend(*[streamed(b"half of a video", then_fail=True)] * 2)
    dest = tmp_path / "clip.mp4"
    async with client_for(backend, retry=RetryPolicy(max_retries=1)) as client:
        with pytest.raises(APIConnectionError):
            await client.download_content("video_1", dest)

    assert entries(tmp_path) == []
    assert len(backend.requests) == 2


@pytest.mark.anyio
async def test_a_failed_download_leaves_an_existing_dest_untouched(tmp_path: Path) -> None:
    dest = tmp_path / "clip.mp4"
    dest.write_bytes(b"the old, complete file")
    backend = Backend(fail(404))
    async with client_for(backend) as client:
        with pytest.raises(NotFoundError):
            await client.download_content("video_1", dest)

    assert dest.read_bytes() == b"the old, complete file"
    assert entries(tmp_path) == [dest]


@pytest.mark.anyio
async def test_a_download_cut_midway_starts_over_and_completes(tmp_path: Path) -> None:
    backend = Backend(streamed(b"partial", then_fail=True), streamed(b"whole ", b"video"))
    dest = tmp_path / "clip.mp4"
    clock = FakeClock()
    async with client_for(backend, clock=clock) as client:
        await client.download_content("video_1", dest)

    assert dest.read_bytes() == b"whole video"
    assert entries(tmp_path) == [dest]
    assert len(clock.slept) == 1


# --- against the emulator, over ASGI: the same code path as a remote backend ----------------------


@asynccontextmanager
async def emulator_client(
    root: Path, clock: FakeClock, *, faults: FaultConfig | None = None, api_key: str | None = KEY
) -> AsyncIterator[tuple[VideosClient, Backend]]:
    app = create_app(root=root, clock=clock, speed=50.0, render_fps=4, faults=faults, api_key=KEY)
    asgi = httpx2.ASGITransport(app=app)
    recorder = Backend()

    async def forward(request: httpx2.Request) -> httpx2.Response:
        recorder.requests.append(request)
        return await asgi.handle_async_request(request)

    transport = httpx2.MockTransport(forward)
    async with httpx2.AsyncClient(transport=transport, base_url="http://emulator/v1") as http:
        yield VideosClient(http, api_key=api_key, profile=EMULATOR, clock=clock), recorder


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.anyio
async def test_the_emulator_round_trip_creates_waits_downloads_remixes_lists_and_deletes(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    async with emulator_client(tmp_path / "emulator", clock) as (client, _):
        created = await client.create_video(
            prompt="a red fox in snow", model="sora-2", size="1280x720", seconds=4
        )
        assert (created.status, created.seconds, created.size) == ("queued", "4", "1280x720")

        done = await wait_for_video(client, created.id, timeout=600, clock=clock)
        assert done.status == "completed"
        assert client.last_poll_after is not None

        clip = await client.download_content(done.id, tmp_path / "out" / "fox.mp4")
        thumb = await client.download_content(done.id, tmp_path / "out" / "fox.webp", variant="thumbnail")
        sheet = await client.download_content(done.id, tmp_path / "out" / "fox.jpg", variant="spritesheet")
        assert clip.read_bytes()[4:8] == b"ftyp"
        assert thumb.read_bytes()[8:12] == b"WEBP"
        assert sheet.read_bytes()[:2] == b"\xff\xd8"
        assert entries(tmp_path / "out") == sorted([clip, thumb, sheet])

        remix = await client.remix_video(done.id, prompt="the same fox at night")
        assert remix.remixed_from_video_id == done.id
        listed = [video.id async for video in client.iter_videos(page_size=1)]
        assert listed == [remix.id, done.id]

        deleted = await client.delete_video(done.id)
        assert (deleted.id, deleted.deleted) == (done.id, True)
        with pytest.raises(NotFoundError):
            await client.retrieve_video(done.id)


@pytest.mark.anyio
async def test_the_emulator_accepts_an_uploaded_first_frame_characters_and_an_extension(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    async with emulator_client(tmp_path / "emulator", clock) as (client, _):
        upload = ImageUpload(content=png(1280, 720), filename="frame.png", mime_type="image/png")
        source = await client.create_video(prompt="a paper boat", size="1280x720", input_reference=upload)
        source = await wait_for_video(client, source.id, timeout=600, clock=clock)
        clip = await client.download_content(source.id, tmp_path / "boat.mp4")

        character = await client.create_character(name="Boaty", video=clip)
        assert (await client.get_character(character.id)).name == "Boaty"
        with_character = await client.create_video(
            prompt="Boaty sails away", size="1280x720", characters=[character.id]
        )
        extended = await client.extend_video(source.id, prompt="it drifts on", seconds=4)

    assert with_character.status == "queued"
    assert extended.seconds == "8"


@pytest.mark.anyio
async def test_the_emulator_batch_flow_uploads_creates_and_reads_a_batch(tmp_path: Path) -> None:
    line = {"custom_id": "a", "method": "POST", "url": "/v1/videos", "body": {"prompt": "a kite"}}
    async with emulator_client(tmp_path / "emulator", FakeClock()) as (client, _):
        uploaded = await client.upload_file(content=json.dumps(line).encode() + b"\n", filename="in.jsonl")
        batch = await client.create_batch(input_file_id=uploaded.id)
        again = await client.retrieve_batch(batch.id)

    assert again.id == batch.id
    assert again.input_file_id == uploaded.id


@pytest.mark.anyio
async def test_the_emulator_faults_are_retried_on_reads_and_never_on_a_create(tmp_path: Path) -> None:
    faults = FaultConfig()
    clock = FakeClock()
    async with emulator_client(tmp_path / "emulator", clock, faults=faults) as (client, recorder):
        faults.inject(500, times=1, methods=["POST"])
        with pytest.raises(OutcomeUnknown):
            await client.create_video(prompt="a fox")
        assert recorder.count("POST") == 1

        created = await client.create_video(prompt="a fox")
        faults.inject(503, times=2, methods=["GET"])
        faults.inject(429, times=1, retry_after=1, methods=["GET"])
        assert (await client.retrieve_video(created.id)).id == created.id
        assert recorder.count("GET") == 4
        assert clock.slept[-1] == 1.0


@pytest.mark.anyio
async def test_the_emulator_refuses_a_wrong_key_without_the_error_repeating_it(tmp_path: Path) -> None:
    wrong = "sk-wrong-key-that-must-not-leak"
    async with emulator_client(tmp_path / "emulator", FakeClock(), api_key=wrong) as (client, _):
        with pytest.raises(AuthenticationError) as caught:
            await client.retrieve_video("video_1")

    assert caught.value.code == "invalid_api_key"
    assert caught.value.request_id is not None
    assert wrong not in str(caught.value)
