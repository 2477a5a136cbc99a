"""Routes for video jobs: create, list, retrieve, delete, download, remix, edit, extend."""

from __future__ import annotations

import tempfile
from pathlib import Path

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from sora_mcp.emulator.assets import CONTENT_TYPES, Variant, first_frame_png
from sora_mcp.emulator.envelope import WireError, bad_request, not_found
from sora_mcp.emulator.jobs import Jobs, upload_size
from sora_mcp.emulator.store import video_json, video_phase
from sora_mcp.emulator.validation import (
    Upload,
    prompt_of,
    read_body,
    reject_unknown,
    seconds_of,
    validate_create,
    video_id_of,
)
from sora_mcp.media.video import MediaInfo, probe

_LIST_MAX = 100
_VARIANTS: tuple[Variant, ...] = ("video", "thumbnail", "spritesheet")


def jobs_of(request: Request) -> Jobs:
    jobs: Jobs = request.app.state.jobs
    return jobs


async def create_video(request: Request) -> Response:
    jobs = jobs_of(request)
    body = await read_body(request)
    video = jobs.create(validate_create(body, jobs.store))
    return jobs.video_response(video)


async def list_videos(request: Request) -> Response:
    jobs = jobs_of(request)
    query = request.query_params
    limit = _int_param(query.get("limit"), "limit", default=20, low=0, high=_LIST_MAX)
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise bad_request(
            f"Invalid value: '{order}'. Supported values are: 'asc' and 'desc'.",
            param="order",
            code="invalid_value",
        )
    records = jobs.store.list_videos()
    if order == "desc":
        records.reverse()
    after = query.get("after")
    if after:
        ids = [r.id for r in records]
        if after not in ids:
            raise bad_request(
                f"No video found with id '{after}' to page after; pass the last_id of a previous page.",
                param="after",
                code="invalid_value",
            )
        records = records[ids.index(after) + 1 :]
    page = records[:limit]
    now = jobs.now()
    return JSONResponse(
        {
            "object": "list",
            "data": [video_json(r, now) for r in page],
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
            "has_more": len(records) > len(page),
        }
    )


async def retrieve_video(request: Request) -> Response:
    jobs = jobs_of(request)
    return jobs.video_response(jobs.video(request.path_params["video_id"]))


async def delete_video(request: Request) -> Response:
    jobs = jobs_of(request)
    video_id = request.path_params["video_id"]
    if not jobs.store.delete_video(video_id):
        raise not_found("video", video_id)
    return JSONResponse({"id": video_id, "object": "video.deleted", "deleted": True})


async def download_content(request: Request) -> Response:
    """The file of a completed job: 404 until then (and for failed jobs), 410 once expired."""
    jobs = jobs_of(request)
    video_id = request.path_params["video_id"]
    variant = request.query_params.get("variant", "video")
    if variant not in _VARIANTS:
        raise bad_request(
            f"Invalid value: '{variant}'. Supported values are: 'video', 'thumbnail' and 'spritesheet'.",
            param="variant",
            code="invalid_value",
        )
    record = jobs.video(video_id)
    phase = video_phase(record, jobs.now())
    if phase.status != "completed":
        detail = "failed and has no content" if phase.status == "failed" else f"is {phase.status}"
        raise WireError(
            404,
            f"Video '{video_id}' {detail}; content is available once its status is 'completed'.",
            code="video_not_ready" if phase.status != "failed" else "video_failed",
        )
    if phase.expires_at is not None and jobs.now() >= phase.expires_at:
        raise WireError(
            410,
            f"The content of video '{video_id}' expired at {phase.expires_at}; generate it again.",
            code="video_expired",
        )
    chosen: Variant = (
        "video" if variant == "video" else "thumbnail" if variant == "thumbnail" else "spritesheet"
    )
    path = await jobs.assets.path_for(record, chosen)
    return FileResponse(path, media_type=CONTENT_TYPES[chosen])


async def remix_video(request: Request) -> Response:
    jobs = jobs_of(request)
    body = await read_body(request)
    reject_unknown(body, {"prompt"})
    prompt = prompt_of(body.fields)
    source = jobs.completed_source(request.path_params["video_id"], action="remixed", param=None)
    return jobs.video_response(jobs.remix(source, prompt))


async def edit_video(request: Request) -> Response:
    jobs = jobs_of(request)
    body = await read_body(request)
    reject_unknown(body, {"prompt", "video"})
    prompt = prompt_of(body.fields)
    source = video_id_of(body)
    if isinstance(source, Upload):
        info, frame = await _probe_upload(source)
        upload_size(info)
        return jobs.video_response(jobs.edit_upload(prompt, info, frame))
    record = jobs.completed_source(source, action="edited", param="video")
    return jobs.video_response(jobs.remix(record, prompt, kind="edit"))


async def extend_video(request: Request) -> Response:
    jobs = jobs_of(request)
    body = await read_body(request)
    reject_unknown(
        body,
        {"prompt", "seconds", "video"},
        {
            "input_reference": "Extensions take no image reference.",
            "characters": "Extensions take no characters; they continue the source video.",
        },
    )
    prompt = prompt_of(body.fields)
    seconds = seconds_of(body.fields, default=None)
    source = video_id_of(body)
    if isinstance(source, Upload):
        info, frame = await _probe_upload(source)
        upload_size(info)
        return jobs.video_response(jobs.extend_upload(source.content, info, frame, prompt, seconds))
    record = jobs.completed_source(source, action="extended", param="video")
    return jobs.video_response(jobs.extend(record, prompt, seconds))


async def _probe_upload(upload: Upload) -> tuple[MediaInfo, bytes]:
    """Probe an uploaded video and grab its first frame (in a worker thread).
    Raises WireError 400 if it is not a readable video."""

    def work() -> tuple[MediaInfo, bytes]:
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "upload.mp4"
            path.write_bytes(upload.content)
            return probe(path), first_frame_png(path)

    try:
        return await anyio.to_thread.run_sync(work)
    except ValueError as exc:
        raise bad_request(
            f"The uploaded 'video' ({upload.filename}) is not a readable video: {exc}.",
            param="video",
            code="invalid_video",
        ) from exc


def _int_param(raw: str | None, name: str, *, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(
            f"Invalid type for '{name}': expected an integer, but got '{raw}'.",
            param=name,
            code="invalid_type",
        ) from None
    if not low <= value <= high:
        raise bad_request(
            f"Invalid '{name}': {value}. Expected a value between {low} and {high}.",
            param=name,
            code="invalid_value",
        )
    return value


def video_routes() -> list[Route]:
    return [
        Route("/videos", create_video, methods=["POST"]),
        Route("/videos", list_videos, methods=["GET"]),
        Route("/videos/edits", edit_video, methods=["POST"]),
        Route("/videos/extensions", extend_video, methods=["POST"]),
        Route("/videos/{video_id}", retrieve_video, methods=["GET"]),
        Route("/videos/{video_id}", delete_video, methods=["DELETE"]),
        Route("/videos/{video_id}/content", download_content, methods=["GET"]),
        Route("/videos/{video_id}/remix", remix_video, methods=["POST"]),
    ]
