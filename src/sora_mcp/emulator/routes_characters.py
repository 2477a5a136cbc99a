"""Routes for characters: a short uploaded clip and a name, reusable in later prompts."""

from __future__ import annotations

import tempfile
from pathlib import Path

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sora_mcp import catalog
from sora_mcp.emulator.envelope import bad_request, not_found
from sora_mcp.emulator.routes_videos import jobs_of
from sora_mcp.emulator.store import CharacterRecord, new_id
from sora_mcp.emulator.validation import read_body, reject_unknown, require_text
from sora_mcp.media.video import probe


def character_json(record: CharacterRecord) -> dict[str, object]:
    return {"id": record.id, "object": "character", "name": record.name, "created_at": record.created_at}


async def create_character(request: Request) -> Response:
    """`POST /videos/characters`: multipart only, a `video` clip of 2-4 s and a `name`."""
    jobs = jobs_of(request)
    body = await read_body(request, json_ok=False)
    reject_unknown(body, {"video", "name"})
    name = require_text(body.fields, "name", max_chars=catalog.CHARACTER_NAME_MAX_CHARS)
    upload = body.uploads.get("video")
    if upload is None:
        raise bad_request(
            "Missing required parameter: 'video' (a 2-4 second video file uploaded as multipart/form-data).",
            param="video",
            code="missing_required_parameter",
        )

    def measure() -> float:
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "clip.mp4"
            path.write_bytes(upload.content)
            return probe(path).seconds

    try:
        seconds = await anyio.to_thread.run_sync(measure)
    except ValueError as exc:
        raise bad_request(
            f"The uploaded 'video' ({upload.filename}) is not a readable video: {exc}.",
            param="video",
            code="invalid_video",
        ) from exc
    low, high = catalog.CHARACTER_CLIP_MIN_SECONDS, catalog.CHARACTER_CLIP_MAX_SECONDS
    if not low <= seconds <= high:
        raise bad_request(
            f"The character clip is {seconds:.2f} s long; it must be between {low:g} and {high:g} seconds. "
            "Trim it and upload again.",
            param="video",
            code="invalid_video_duration",
        )
    record = CharacterRecord(
        id=new_id("char_", 32), name=name, created_at=int(jobs.now()), clip_seconds=seconds
    )
    jobs.store.save_character(record, upload.content)
    return JSONResponse(character_json(record))


async def get_character(request: Request) -> Response:
    jobs = jobs_of(request)
    character_id = request.path_params["character_id"]
    record = jobs.store.get_character(character_id)
    if record is None:
        raise not_found("character", character_id)
    return JSONResponse(character_json(record))


def character_routes() -> list[Route]:
    # Listed before /videos/{video_id} so "characters" is never taken for a video id.
    return [
        Route("/videos/characters", create_character, methods=["POST"]),
        Route("/videos/characters/{character_id}", get_character, methods=["GET"]),
    ]
