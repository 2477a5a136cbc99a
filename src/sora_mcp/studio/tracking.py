"""What the backend says about a job, copied into the registry: status, progress, timestamps,
error, and the `seconds` only the answer knows for sure (an extension's stitched total)."""

from __future__ import annotations

import math
import uuid
from typing import Any

from sora_mcp.api.client import VideosClient
from sora_mcp.api.models import Video
from sora_mcp.clock import Clock
from sora_mcp.errors import InvalidRequest, NotFoundError
from sora_mcp.registry.interface import RegistryStore
from sora_mcp.registry.records import VideoRecord


def absorb(registry: RegistryStore, record: VideoRecord, video: Video) -> VideoRecord:
    """Copy what the backend said about `record`'s job into the registry; the updated record."""
    changes: dict[str, Any] = {
        "status": video.status
        if video.status in ("queued", "in_progress", "completed", "failed")
        else record.status,
        "progress": 100 if video.status == "completed" else int(video.progress or 0),
        "completed_at": video.completed_at,
        "expires_at": video.expires_at,
    }
    if video.error is not None:
        changes["error_code"] = video.error.code
        changes["error_message"] = video.error.message
    seconds = wire_seconds(video)
    if seconds is not None and record.stitch_onto is None:
        # An extension's `seconds` is the stitched total, known for sure only from the answer
        # (one stitched here is the new clip alone on the backend: its total is ours).
        changes["seconds"] = seconds
    if all(getattr(record, name) == value for name, value in changes.items()):
        return record  # nothing new: no write (polls of a long render mostly say the same)
    return registry.update_video(record.local_id, **changes)


async def adopt(
    video_id: str, *, client: VideosClient, registry: RegistryStore, clock: Clock, backend: str
) -> VideoRecord:
    """A video made outside this registry: fetch it and start remembering it.

    Raises:
        InvalidRequest: neither the registry nor the backend knows `video_id`.
    """
    try:
        video = await client.retrieve_video(video_id)
    except NotFoundError as exc:
        raise InvalidRequest(
            f"No video {video_id!r} in the registry or on the backend. Use list_videos.",
            param="video_id",
            code="unknown_video",
        ) from exc
    now = clock.now()
    record = VideoRecord(
        local_id=uuid.uuid4().hex,
        backend=backend,
        model=video.model or "unknown",
        prompt=video.prompt or "",
        size=video.size or "unknown",
        seconds=wire_seconds(video) or 0,
        created_at=now,
        updated_at=now,
        note="Adopted: made outside this registry.",
    )
    registry.record_intent(record)
    record = registry.record_submitted(
        record.local_id,
        video_id=video.id,
        status=video.status,
        progress=video.progress or 0,
        remote_created_at=video.created_at,
    )
    return absorb(registry, record, video)


def wire_seconds(video: Video) -> int | None:
    """The video's `seconds` as a whole number, or None if absent or not a number."""
    try:
        value = float(video.seconds) if video.seconds is not None else math.nan
    except ValueError:
        return None
    return round(value) if math.isfinite(value) and value >= 0 else None
