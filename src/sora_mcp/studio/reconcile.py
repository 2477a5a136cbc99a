"""Find the job behind a request whose answer was lost — by looking, never by resubmitting.

A billable POST that timed out after sending, lost its connection or got a 5xx may or may not
have started a job. Its registry record is 'unknown' (or still 'submitting' if the process died
mid-request). Here the backend's recent jobs are listed and matched on what we sent — prompt,
model, size, seconds — and on time: the job must have been created close to when the intent was
written, and must not already belong to another record.
"""

from __future__ import annotations

import logging

from sora_mcp.api.client import VideosClient
from sora_mcp.api.models import Video
from sora_mcp.clock import Clock
from sora_mcp.errors import APIError
from sora_mcp.registry.records import VideoRecord
from sora_mcp.registry.store import Registry

log = logging.getLogger(__name__)

# Clocks differ between us and the backend; a job created this long before our intent cannot be
# ours, nor one created long after it.
EARLY_SLACK_SECONDS = 120
LATE_WINDOW_SECONDS = 900
# How far back the backend's list is read (newest first).
SCAN_LIMIT = 200
# After this long without a match the record is settled as "never started".
GIVE_UP_SECONDS = 3600
# A 'submitting' record older than this belongs to a request that cannot still be in flight.
STALE_SUBMITTING_SECONDS = 300


def needs_reconciling(record: VideoRecord, now: float) -> bool:
    if record.id is not None:
        return False
    if record.status == "unknown":
        return True
    return record.status == "submitting" and now - record.updated_at > STALE_SUBMITTING_SECONDS


def _matches(record: VideoRecord, video: Video) -> bool:
    if video.created_at is not None and not (
        record.created_at - EARLY_SLACK_SECONDS <= video.created_at <= record.created_at + LATE_WINDOW_SECONDS
    ):
        return False
    return (
        (video.prompt is None or video.prompt == record.prompt)
        and (video.model is None or video.model == record.model)
        and (video.size is None or video.size == record.size)
        and (video.seconds is None or video.seconds == str(record.seconds) or record.relation == "extension")
    )


async def reconcile(
    record: VideoRecord, *, client: VideosClient, registry: Registry, clock: Clock
) -> VideoRecord:
    """Attach the backend job that matches `record`, if one is found; otherwise leave it unknown
    (or, after GIVE_UP_SECONDS, settle it as failed with code `request_lost`). Never sends a POST."""
    if not client.capabilities.has("list"):
        return registry.update_video(
            record.local_id,
            note="The backend cannot list jobs, so this lost request cannot be matched; check the "
            "provider's dashboard before generating again.",
        )
    try:
        async for video in client.iter_videos(order="desc", max_items=SCAN_LIMIT):
            if video.created_at is not None and video.created_at < record.created_at - EARLY_SLACK_SECONDS:
                break  # newest first: everything further is older still
            if not _matches(record, video) or registry.get_video(video.id) is not None:
                continue
            log.info("reconciled %s with backend job %s", record.local_id, video.id)
            found = registry.record_submitted(
                record.local_id,
                video_id=video.id,
                status=video.status
                if video.status in ("queued", "in_progress", "completed", "failed")
                else "queued",
                progress=int(video.progress or 0),
                remote_created_at=video.created_at,
            )
            return registry.update_video(
                found.local_id, note="Found on the backend after its answer was lost."
            )
    except APIError as exc:
        return registry.update_video(record.local_id, note=f"Reconciliation could not list jobs yet: {exc}")
    if clock.now() - record.created_at > GIVE_UP_SECONDS:
        return registry.update_video(
            record.local_id,
            status="failed",
            error_code="request_lost",
            error_message="No matching job was found on the backend: the request never started a job.",
        )
    return registry.update_video(
        record.local_id, status="unknown", note="No matching job on the backend yet; will look again."
    )
