"""The video tools: generate, get_video, download, list_videos. Each one validates, calls the
Studio, and shapes the answer for the model.

They are plain functions; `server/tools/table.py` names them, gives their annotations and wraps
them in `common.tool_errors`, so domain errors (`SoraError`) become tool errors in one place.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent
from pydantic import Field

from sora_mcp import catalog
from sora_mcp.api.models import Variant
from sora_mcp.errors import SoraError
from sora_mcp.media.images import sniff_image
from sora_mcp.registry.records import UNFINISHED_STATUSES, VideoRecord
from sora_mcp.server.common import (
    ClientRoots,
    IdempotencyKey,
    Seconds,
    VideoId,
    WaitSeconds,
    progress_reporter,
    recommended_wait,
    studio_of,
    wait_limit,
)
from sora_mcp.server.common import idempotency_key as key_for
from sora_mcp.server.confirm import ConfirmToken, GenerateApproval, require_consent
from sora_mcp.server.schemas import (
    DownloadResult,
    GenerateResult,
    GetVideoResult,
    LineageLink,
    ListVideosResult,
    VideoView,
)
from sora_mcp.server.state import AppState
from sora_mcp.studio.derive import plan_generation
from sora_mcp.studio.lineage import children_links, parent_link
from sora_mcp.studio.listing import find_videos

# Keep inline previews small: some hosts cap a result near 1 MB.
PREVIEW_MAX_BYTES = 350_000

ModelName = Annotated[
    str,
    Field(
        description="sora-2 (fast, $0.10/s) or sora-2-pro (polished, $0.30–0.50/s). Dated snapshots also work."
    ),
]
Size = Annotated[
    str,
    Field(
        description="WIDTHxHEIGHT. sora-2: 720x1280 (portrait), 1280x720 (landscape). sora-2-pro also: "
        "1024x1792, 1792x1024, 1080x1920, 1920x1080."
    ),
]


Prompt = Annotated[
    str,
    Field(description="The shot: style, subject, action, setting, camera, lighting. 1–32000 chars."),
]
FirstFrame = Annotated[
    str | None,
    Field(
        description="Optional first frame: a local path, https URL or data: URL (JPEG/PNG/WebP), fitted "
        "to size (see fit); the prompt says what happens next. No human faces."
    ),
]
Fit = Annotated[
    Literal["crop", "pad", "stretch"],
    Field(description="Fitting a first frame of another shape: crop (fill), pad (black bars) or stretch."),
]
Characters = Annotated[
    list[str] | None,
    Field(
        max_length=catalog.CHARACTERS_PER_VIDEO,
        description="Up to 2 character names or ids (create_character); each name must appear verbatim "
        "in the prompt.",
    ),
]
StartFrom = Annotated[
    str | None,
    Field(
        description="A video id whose last frame (or the frame at start_from_second) becomes the first "
        "frame, instead of image: chains scenes."
    ),
]
StartFromSecond = Annotated[
    float | None,
    Field(ge=0, description="With start_from: take the frame at this second instead of the last."),
]
Variations = Annotated[
    int,
    Field(
        ge=1,
        le=catalog.MAX_VARIATIONS,
        description="Independent takes of the same request (1–4); each is billed.",
    ),
]
DownloadVariant = Annotated[
    Literal["video", "thumbnail", "spritesheet", "all"],
    Field(description="video (MP4), thumbnail (WebP), spritesheet (JPEG grid of frames) or all."),
]
StatusFilter = Annotated[
    Literal["pending", "submitting", "queued", "in_progress", "completed", "failed", "unknown", "deleted"]
    | None,
    Field(description="Only videos in this state."),
]


async def generate(
    prompt: Prompt,
    ctx: Context[AppState],
    client_roots: ClientRoots,
    approval: GenerateApproval,
    model: ModelName = catalog.DEFAULT_MODEL,
    size: Size = catalog.DEFAULT_SIZE,
    seconds: Seconds = 4,
    image: FirstFrame = None,
    fit: Fit = "crop",
    characters: Characters = None,
    start_from: StartFrom = None,
    start_from_second: StartFromSecond = None,
    variations: Variations = 1,
    wait_seconds: WaitSeconds = 0,
    confirm_token: ConfirmToken = None,
    idempotency_key: IdempotencyKey = None,
) -> GenerateResult:
    """Start video clips from a prompt, optionally on a first frame (image or start_from) with up to
    2 characters. COST: per second of output × variations (see model); the estimate is returned.
    Returns at once with job ids; clips take minutes. NEXT: get_video(video_id, wait_seconds=40),
    again while still running (files download automatically). Never call generate again to
    "retry" a running job: that bills another. Longer: extend; one change: edit.
    """
    require_consent(approval)
    studio = studio_of(ctx)
    plan = await plan_generation(
        studio,
        prompt=prompt,
        model=model,
        size=size,
        seconds=seconds,
        variations=variations,
        image=image,
        fit=fit,
        characters=characters or (),
        start_from=start_from,
        start_from_second=start_from_second,
    )
    outcome = await studio.generate(plan, idempotency_key=key_for(ctx, idempotency_key))
    records = outcome.records
    errors = list(outcome.errors)
    wait = wait_limit(studio.settings, wait_seconds)
    if wait > 0 and records:
        try:
            records = await studio.wait(
                [r.local_id for r in records], timeout=wait, on_progress=progress_reporter(ctx)
            )
        except SoraError as exc:
            # The jobs are started and billed: answer their ids rather than an error.
            records = [studio.registry.get_video(r.local_id) or r for r in records]
            errors.append(f"The jobs started, but following them failed: {exc}")
    next_step = _generate_next(records, errors, recommended_wait(studio.settings))
    if outcome.replayed:
        next_step = (
            "This idempotency_key was already used: these are that call's jobs, and nothing new was "
            f"sent or billed. {next_step}"
        )
    return GenerateResult(
        videos=[VideoView.of(r) for r in records],
        estimated_cost_usd=round(plan.cost_per_clip * len(outcome.records), 2),
        estimated_seconds_each=studio.estimate_seconds(plan),
        simulated=studio.settings.is_emulator,
        errors=errors,
        next_step=next_step,
    )


async def get_video(
    video_id: VideoId,
    ctx: Context[AppState],
    wait_seconds: WaitSeconds = 0,
    preview: Annotated[bool, Field(description="Include the thumbnail inline again.")] = False,
) -> Annotated[CallToolResult, GetVideoResult]:
    """Show a video's status, progress, files, error and lineage; optionally wait for it. FREE.
    still_running=true: call again with the same id (the job keeps running). Completed videos are
    downloaded automatically; the thumbnail comes inline the first time. A failed one carries
    error.code (e.g. moderation_blocked): rephrase and generate again.
    """
    studio = studio_of(ctx)
    known = studio.registry.get_video(video_id)
    seen_completed = known is not None and known.status == "completed"
    wait = wait_limit(studio.settings, wait_seconds)
    # One deadline: a completed video's download counts against the wait (or its own budget).
    record = await studio.refresh(video_id, download_budget=wait or None)
    if wait > 0 and record.status in UNFINISHED_STATUSES:
        (record,) = await studio.wait([record.local_id], timeout=wait, on_progress=progress_reporter(ctx))
    still_running = record.status in UNFINISHED_STATUSES
    parent = parent_link(studio.registry, record)
    result = GetVideoResult(
        video=VideoView.of(record),
        still_running=still_running,
        parent=LineageLink.of(parent) if parent else None,
        children=[LineageLink.of(link) for link in children_links(studio.registry, record)],
        next_step=_next(record, recommended_wait(studio.settings)),
    )
    return _with_media(result, record, preview=preview or not seen_completed)


async def download(
    video_id: VideoId, ctx: Context[AppState], variant: DownloadVariant = "video"
) -> Annotated[CallToolResult, DownloadResult]:
    """Download a completed video's files into the output folder; returns absolute paths.

    FREE. Completed videos are already downloaded automatically: use this to re-fetch, or for
    the thumbnail / spritesheet. Files expire on the backend (expires_at). Writes are atomic.
    """
    studio = studio_of(ctx)
    variants: tuple[Variant, ...] = ("video", "thumbnail", "spritesheet") if variant == "all" else (variant,)
    record, paths = await studio.download(video_id, variants)
    result = DownloadResult(
        video_id=record.id or record.local_id,
        files={k: str(v) for k, v in paths.items()},
        fallback=record.fallback,
        next_step="Open the files, or show the path to the user.",
    )
    return _with_media(result, record, only=set(paths), preview="thumbnail" in paths)


async def list_videos(
    ctx: Context[AppState],
    status: StatusFilter = None,
    model: Annotated[str | None, Field(description="Only videos of this model.")] = None,
    text: Annotated[str | None, Field(description="Only videos whose prompt contains this text.")] = None,
    character: Annotated[
        str | None, Field(description="Only videos using this character (name or id).")
    ] = None,
    batch: Annotated[str | None, Field(description="Only videos of this batch (its id).")] = None,
    parent: Annotated[
        str | None, Field(description="Only videos made from this video id (edits, extensions, …).")
    ] = None,
    limit: Annotated[int, Field(ge=1, le=200, description="At most this many, newest first.")] = 20,
) -> ListVideosResult:
    """List the videos in the local registry (every session, newest first), with status and files.

    FREE and quick: reads the registry after looking up lost answers (get_video gives a fresh
    status). Filters combine.
    """
    studio = studio_of(ctx)
    await studio.lost.reconcile_all()
    records = find_videos(
        studio.registry,
        status=status,
        model=model,
        text=text,
        character=character,
        batch=batch,
        parent=parent,
        limit=limit,
    )
    return ListVideosResult(
        videos=[VideoView.of(r) for r in records],
        count=len(records),
        next_step="get_video(video_id) for a fresh status; download(video_id) for files.",
    )


def _generate_next(records: list[VideoRecord], errors: list[str], wait: int) -> str:
    """What to do after generate, true to what happened to every job."""
    running = [r for r in records if r.status in UNFINISHED_STATUSES]
    failed = [r for r in records if r.status == "failed"]
    lost = [r.local_id for r in records if r.id is None and r.status == "unknown"]
    parts: list[str] = []
    if lost:
        parts.append(
            f"The answer for {', '.join(lost)} was lost: the job may exist and be billed. Do not "
            "generate again; sora-mcp looks for it on the backend itself — call get_video with that "
            f"id (wait_seconds={wait}) to see it found and followed."
        )
    running = [r for r in running if r.local_id not in lost]
    if running:
        ids = ", ".join(r.id or r.local_id for r in running)
        parts.append(
            f"Call get_video with video_id {ids} and wait_seconds={wait}; call again while still_running is true."
        )
    if failed:
        parts.append(f"{len(failed)} failed (see error): change the prompt and generate again.")
    done = [r for r in records if r.status == "completed"]
    if done:
        missing = [r.id or r.local_id for r in done if "video" not in r.files]
        parts.append(
            f"Completed, but the file of {', '.join(missing)} is not saved yet: call download."
            if missing
            else "Done: see files for the downloaded MP4s; list_videos shows everything."
        )
    if records and errors:
        parts.append("Some requests failed; see errors before sending more.")
    return " ".join(parts) or "Nothing was started."


def _next(record: VideoRecord, wait: int) -> str:
    vid = record.id or record.local_id
    match record.status:
        case "completed":
            return "Done. The MP4 is at files.video; download(video_id, 'thumbnail') for a preview image."
        case "failed":
            return (
                f"Failed with {record.error_code}: {record.error_message}. Change the prompt accordingly "
                "and call generate again (the failed job is not billed on most backends)."
            )
        case "unknown":
            return (
                "The request's answer was lost; sora-mcp looks for its job on the backend itself "
                f"(never resending it). Do not generate again; call get_video('{vid}') again shortly."
            )
        case "deleted":
            return "This video was deleted."
        case _:
            return (
                f"Still {record.status} ({record.progress}%). Call get_video('{vid}', wait_seconds={wait}) "
                "again; the job keeps running meanwhile."
            )


def _with_media(
    result: Any, record: VideoRecord, *, preview: bool, only: set[str] | None = None
) -> CallToolResult:
    """The structured result plus resource links to local files and, with `preview`, a small
    inline thumbnail, for hosts that show media but ignore structured content. The thumbnail is
    sent only when it helps (first completion, or asked for): it costs context on every call."""
    structured = result.model_dump(mode="json")
    # Compact JSON from the same dump: the text copy is for hosts that ignore structured content,
    # and indentation would only add tokens (and a second serialization) to every answer.
    text = json.dumps(structured, ensure_ascii=False, separators=(",", ":"))
    blocks: list[ContentBlock] = [TextContent(type="text", text=text)]
    for variant, path_text in record.files.items():
        if only is not None and variant not in only:
            continue
        path = Path(path_text)
        if not path.is_file():
            continue
        blocks.append(
            ResourceLink(
                type="resource_link",
                uri=path.as_uri(),
                name=path.name,
                mime_type=_MIME.get(variant, "application/octet-stream"),
                size=path.stat().st_size,
            )
        )
    thumb = record.files.get("thumbnail")
    if preview and thumb and Path(thumb).is_file() and Path(thumb).stat().st_size <= PREVIEW_MAX_BYTES:
        raw = Path(thumb).read_bytes()
        # Only a real WebP is shown as one: a gateway may have answered with the MP4.
        if sniff_image(raw) == "webp":
            blocks.append(
                ImageContent(type="image", data=base64.b64encode(raw).decode(), mime_type="image/webp")
            )
    return CallToolResult(content=blocks, structured_content=structured)


_MIME = {"video": "video/mp4", "thumbnail": "image/webp", "spritesheet": "image/jpeg"}
