"""Fidelity: the official openai SDK, over a real socket, parses every emulator answer.

Each JSON answer is also validated strictly against the SDK's own pydantic model (the SDK itself
builds models leniently and would let a missing field through).
"""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import openai
import pytest
import uvicorn
from openai.types import Batch, FileObject, Video, VideoDeleteResponse
from openai.types.video_create_character_response import VideoCreateCharacterResponse
from openai.types.video_get_character_response import VideoGetCharacterResponse
from PIL import Image
from pydantic import BaseModel

from sora_mcp.emulator.app import create_app
from sora_mcp.emulator.render import RenderSpec, render_video
from sora_mcp.media.video import cut_clip, probe

# The SDK marks every Videos method deprecated (the hosted service shut down); that is expected.
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")

_M = TypeVar("_M", bound=BaseModel)


class _Server(uvicorn.Server):
    """uvicorn that says when it is listening, so the test waits on an event, not a sleep."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = create_app(root=tmp_path_factory.mktemp("emulator"), speed=1e6, render_fps=4)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    assert server.ready.wait(timeout=10), "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def client(base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0) as client:
        yield client


def strict(model: type[_M], raw: Any) -> _M:
    """Validate a raw SDK response's JSON against the SDK model, with no leniency."""
    return model.model_validate(json.loads(raw.http_response.content))


def png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 80, 20)).save(out, format="PNG")
    return out.getvalue()


def test_the_sdk_creates_polls_lists_downloads_and_deletes_videos(
    client: openai.OpenAI, tmp_path: Path
) -> None:
    raw = client.videos.with_raw_response.create(prompt="a kite over dunes", seconds="4", size="1280x720")
    created = strict(Video, raw)
    # At this speed the job may already be done when its answer is built.
    assert (created.seconds, created.size, created.model) == ("4", "1280x720", "sora-2")
    assert raw.headers["openai-poll-after-ms"]

    with_image = client.videos.create(
        prompt="the kite lifts", input_reference=("ref.png", png((720, 1280)), "image/png")
    )
    assert with_image.size == "720x1280"

    polled = client.videos.create_and_poll(prompt="a third clip")
    assert (polled.status, polled.progress) == ("completed", 100)
    retrieved = strict(Video, client.videos.with_raw_response.retrieve(created.id))
    assert retrieved.status == "completed"
    assert retrieved.expires_at == (retrieved.completed_at or 0) + 3600

    page = client.videos.list(limit=2)
    assert len(page.data) == 2
    assert page.has_more is True
    ids = [video.id for video in page]
    assert len(ids) == len(set(ids)) >= 3
    assert {created.id, with_image.id, polled.id} <= set(ids)

    content = client.videos.download_content(created.id)
    content.write_to_file(tmp_path / "kite.mp4")
    info = probe(tmp_path / "kite.mp4")
    assert (info.width, info.height, info.seconds) == (1280, 720, 4.0)
    thumbnail = client.videos.download_content(created.id, variant="thumbnail")
    assert thumbnail.content[8:12] == b"WEBP"

    deleted = strict(VideoDeleteResponse, client.videos.with_raw_response.delete(created.id))
    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError) as caught:
        client.videos.retrieve(created.id)
    assert caught.value.response.headers["x-request-id"].startswith("req_")


def test_the_sdk_remixes_edits_extends_and_uses_characters(client: openai.OpenAI, tmp_path: Path) -> None:
    source = client.videos.create_and_poll(prompt="a paper boat drifts", seconds="4")
    remix = strict(Video, client.videos.with_raw_response.remix(source.id, prompt="at night"))
    assert remix.remixed_from_video_id == source.id
    # SDK 3.x cannot send `video={"id": ...}` (its multipart encoder insists on a file), so
    # reference edits and extensions go through its generic JSON post; uploads use the methods.
    edit = client.post(
        "/videos/edits", body={"prompt": "in the rain", "video": {"id": source.id}}, cast_to=Video
    )
    assert Video.model_validate(edit.model_dump()).prompt == "in the rain"
    extension = client.post(
        "/videos/extensions", body={"prompt": "on", "seconds": "4", "video": {"id": source.id}}, cast_to=Video
    )
    assert extension.seconds == "8"
    client.videos.poll(extension.id)
    client.videos.download_content(extension.id).write_to_file(tmp_path / "long.mp4")
    assert probe(tmp_path / "long.mp4").seconds == 8.0

    source_file = ("boat.mp4", (tmp_path / "long.mp4").read_bytes(), "video/mp4")
    uploaded_edit = strict(Video, client.videos.with_raw_response.edit(prompt="in fog", video=source_file))
    assert (uploaded_edit.seconds, uploaded_edit.size) == ("8", "720x1280")
    uploaded_extension = strict(
        Video, client.videos.with_raw_response.extend(prompt="it sails on", seconds="4", video=source_file)
    )
    assert uploaded_extension.seconds == "12"

    render_video(RenderSpec(prompt="a crane", width=64, height=64, seconds=4, fps=4), tmp_path / "crane.mp4")
    cut_clip(tmp_path / "crane.mp4", tmp_path / "three.mp4", start=0.5, seconds=3)
    raw = client.videos.with_raw_response.create_character(
        name="Pip", video=("three.mp4", (tmp_path / "three.mp4").read_bytes(), "video/mp4")
    )
    character = strict(VideoCreateCharacterResponse, raw)
    assert character.name == "Pip"
    assert character.id is not None
    fetched = strict(VideoGetCharacterResponse, client.videos.with_raw_response.get_character(character.id))
    assert fetched.name == "Pip"
    starring = client.videos.create(
        prompt="Pip folds a boat", extra_body={"characters": [{"id": character.id}]}
    )
    assert starring.prompt == "Pip folds a boat"


def test_the_sdk_runs_a_batch_through_files(client: openai.OpenAI) -> None:
    lines = [
        {"custom_id": "ok", "method": "POST", "url": "/v1/videos", "body": {"prompt": "a tide pool"}},
        {
            "custom_id": "no",
            "method": "POST",
            "url": "/v1/videos",
            "body": {"prompt": "x [fail:sentinel_block]"},
        },
    ]
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    uploaded = strict(
        FileObject, client.files.with_raw_response.create(file=("in.jsonl", content), purpose="batch")
    )
    raw = client.batches.with_raw_response.create(
        input_file_id=uploaded.id, endpoint="/v1/videos", completion_window="24h"
    )
    batch = strict(Batch, raw)
    finished = strict(Batch, client.batches.with_raw_response.retrieve(batch.id))
    assert finished.status == "completed"
    assert finished.request_counts is not None
    assert (finished.request_counts.completed, finished.request_counts.failed) == (1, 1)
    assert finished.output_file_id is not None
    assert finished.error_file_id is not None
    output = [json.loads(text) for text in client.files.content(finished.output_file_id).text.splitlines()]
    assert Video.model_validate(output[0]["response"]["body"]).status == "completed"
    errors = [json.loads(text) for text in client.files.content(finished.error_file_id).text.splitlines()]
    assert errors[0]["error"]["code"] == "sentinel_block"
    assert (
        strict(FileObject, client.files.with_raw_response.retrieve(finished.output_file_id)).purpose
        == "batch_output"
    )


def test_the_sdk_maps_error_envelopes_to_its_exceptions(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as bad_size:
        client.videos.create(prompt="x", size="1792x1024")
    assert (bad_size.value.code, bad_size.value.param) == ("invalid_value", "size")
    with pytest.raises(openai.BadRequestError) as bad_seconds:
        client.videos.create(prompt="x", seconds="5")  # type: ignore[arg-type]
    assert (bad_seconds.value.code, bad_seconds.value.param) == ("invalid_value", "seconds")
    with pytest.raises(openai.NotFoundError):
        client.videos.get_character("char_missing")
