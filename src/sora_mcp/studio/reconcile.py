"""Find the jobs behind requests whose answers were lost — by looking, never by resubmitting.

A billable POST that timed out after sending, lost its connection or got a 5xx may or may not
have started a job. Its registry record is 'unknown' (or still 'submitting' if the process died
mid-request). Here the backend's jobs are listed, newest first, as far back as the oldest lost
request's time window needs, and matched on what we sent — prompt, model, size, seconds — and
on time: the job must have been created close to when the intent was written, and must not
already belong to another record.

A job is never taken from a request still in flight: while another request with the same
fingerprint is 'submitting' (its answer may yet name the job), a lost request with that
fingerprint is not matched; it is looked for again once they settle (`Studio` triggers that).
Should a job still end up attached to the wrong lost request (two processes, a request in
flight longer than `STALE_SUBMITTING_SECONDS`), the answer that names it wins
(`submission.submit_once`) and the lost request is looked for again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sora_mcp.api.client import VideosClient
from sora_mcp.api.models import Video
from sora_mcp.clock import Clock
from sora_mcp.errors import APIError, RegistryError
from sora_mcp.registry.interface import RegistryStore
from sora_mcp.registry.records import VideoRecord

log = logging.getLogger(__name__)

# Clocks differ between us and the backend; a job created this long before our intent cannot be
# ours, nor one created long after it.
EARLY_SLACK_SECONDS = 120
LATE_WINDOW_SECONDS = 900
# Jobs listed without a `created_at` cannot tell the scan where to stop; past this many it stops.
SCAN_SAFETY_LIMIT = 20_000
# After this long without a match the record is settled as "never started".
GIVE_UP_SECONDS = 3600
# A 'submitting' record older than this belongs to a request that cannot still be in flight.
STALE_SUBMITTING_SECONDS = 300

FOUND_NOTE = "Found on the backend after its answer was lost."
WAITING_NOTE = (
    "Waiting for other requests with the same prompt still in flight to be answered before "
    "matching, so their jobs are not mistaken for this one."
)


def needs_reconciling(record: VideoRecord, now: float) -> bool:
    if record.id is not None:
        return False
    if record.status == "unknown":
        return True
    return record.status == "submitting" and now - record.updated_at > STALE_SUBMITTING_SECONDS


def in_flight(record: VideoRecord, now: float) -> bool:
    """True for a request sent (or being sent) whose answer may still arrive."""
    return record.id is None and record.status == "submitting" and not needs_reconciling(record, now)


def _fingerprint(record: VideoRecord) -> tuple[str, str, str, int | str, str | None]:
    seconds: int | str = "any" if record.relation == "extension" else record.seconds
    return (record.prompt, record.model, record.size, seconds, record.parent_id)


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
    record: VideoRecord, *, client: VideosClient, registry: RegistryStore, clock: Clock
) -> VideoRecord:
    """`reconcile_many` for one record; its latest version."""
    (found,) = await reconcile_many([record], client=client, registry=registry, clock=clock)
    return found


async def reconcile_many(
    records: Sequence[VideoRecord], *, client: VideosClient, registry: RegistryStore, clock: Clock
) -> list[VideoRecord]:
    """Attach the backend jobs that match `records` (lost requests), in one pass of the backend's
    list; records not matched are left unknown (or, after GIVE_UP_SECONDS, settled as failed
    with code `request_lost`). Returns the latest version of each record. Never sends a POST."""
    now = clock.now()
    lost = [r for r in records if needs_reconciling(r, now)]
    if not lost:
        return [registry.get_video(r.local_id) or r for r in records]
    if not client.capabilities.has("list"):
        for record in lost:
            registry.update_video(
                record.local_id,
                note="The backend cannot list jobs, so this lost request cannot be matched; check the "
                "provider's dashboard before generating again.",
            )
        return [registry.get_video(r.local_id) or r for r in records]
    busy = {_fingerprint(r) for r in registry.unfinished_videos() if in_flight(r, now)}
    waiting = [r for r in lost if _fingerprint(r) in busy]
    for record in waiting:
        registry.update_video(record.local_id, status="unknown", note=WAITING_NOTE)
    matchable = [r for r in lost if _fingerprint(r) not in busy]
    if matchable:
        await _scan(matchable, client=client, registry=registry, clock=clock)
    return [registry.get_video(r.local_id) or r for r in records]


async def _scan(
    lost: list[VideoRecord], *, client: VideosClient, registry: RegistryStore, clock: Clock
) -> None:
    remaining = sorted(lost, key=lambda r: r.created_at)
    horizon = remaining[0].created_at - EARLY_SLACK_SECONDS
    scanned = 0
    try:
        async for video in client.iter_videos(order="desc"):
            scanned += 1
            if video.created_at is not None and video.created_at < horizon:
                break  # newest first: everything further is older than every window
            if scanned > SCAN_SAFETY_LIMIT:
                break
            match = next((r for r in remaining if _matches(r, video)), None)
            if match is None or registry.get_video(video.id) is not None:
                continue
            if _attach(registry, match, video):
                remaining.remove(match)
                if not remaining:
                    return
    except APIError as exc:
        for record in remaining:
            registry.update_video(record.local_id, note=f"Reconciliation could not list jobs yet: {exc}")
        return
    for record in remaining:
        _not_found(registry, record, clock.now())


def _attach(registry: RegistryStore, record: VideoRecord, video: Video) -> bool:
    try:
        found = registry.record_submitted(
            record.local_id,
            video_id=video.id,
            status=video.status
            if video.status in ("queued", "in_progress", "completed", "failed")
            else "queued",
            progress=int(video.progress or 0),
            remote_created_at=video.created_at,
        )
    except RegistryError:
        # Another process attached this job (or this record) in between: not ours to take.
        return False
    log.info("reconciled %s with backend job %s", record.local_id, video.id)
    registry.update_video(found.local_id, note=FOUND_NOTE)
    return True


def _not_found(registry: RegistryStore, record: VideoRecord, now: float) -> None:
    if now - record.created_at > GIVE_UP_SECONDS:
        registry.update_video(
            record.local_id,
            status="failed",
            error_code="request_lost",
            error_message="No matching job was found on the backend: the request never started a job.",
        )
    else:
        registry.update_video(
            record.local_id, status="unknown", note="No matching job on the backend yet; will look again."
        )
