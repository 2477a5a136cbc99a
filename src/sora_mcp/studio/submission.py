"""The money contract of one billable request: intent recorded before, id recorded after, sent
exactly once, and a lost answer left `unknown` for reconciliation — never resent.

Two things can still go wrong once the backend has answered with a job, and neither may lose it:
the job was already attached, by reconciliation, to another (lost) request — the answer that
names it is authoritative, so the job moves to this record and the other is looked for again;
or the registry cannot be written — the job is kept in memory (`Unrecorded`), recorded as soon
as the registry can be written again, and the caller still gets its id and cost.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sora_mcp.api.models import Video
from sora_mcp.errors import APIError, OutcomeUnknown, RateLimitError, RegistryError
from sora_mcp.registry.interface import RegistryStore
from sora_mcp.registry.records import VideoRecord
from sora_mcp.studio.reconcile import FOUND_NOTE
from sora_mcp.studio.tracking import absorb

log = logging.getLogger(__name__)

RECLAIMED_NOTE = (
    "The job first matched to this lost request turned out to be another request's (its answer "
    "named it); its own job is looked for again, never resubmitted."
)


class UnrecordedJob(RegistryError):
    """The backend started (and bills) a job, but the registry could not record its id. The
    job is kept in memory and recorded as soon as the registry can be written; `record` is the
    intent with the job's id, as it will be stored."""

    def __init__(self, message: str, *, record: VideoRecord, video: Video) -> None:
        super().__init__(message, code="job_not_recorded")
        self.record = record
        self.video = video


Unrecorded = dict[str, Video]
"""Jobs started whose ids the registry could not take yet: local id → the backend's answer."""


async def submit_once(
    registry: RegistryStore,
    intent: VideoRecord,
    send: Callable[[], Awaitable[Video]],
    *,
    keep_refused: bool = False,
    unrecorded: Unrecorded | None = None,
) -> VideoRecord:
    """Send ONE billable request: record the intent, call `send` once, record the id.

    `intent` may already be stored (e.g. a queued batch item); otherwise it is stored first.
    With `keep_refused`, a refused request leaves the record as 'failed' with the backend's
    error code (batch items must be reported) instead of discarding it — or as 'pending' after
    a 429, which is a refusal to process that may be sent again after Retry-After.

    Raises:
        OutcomeUnknown: the answer was lost; the record is left as 'unknown', never resent.
        APIError: the backend refused; the intent is discarded (no job, no charge).
        UnrecordedJob: the job started but the registry could not record it (kept in
            `unrecorded`, to be recorded by `record_unrecorded`).
    """
    if registry.get_video(intent.local_id) is None:
        registry.record_intent(intent)
    elif intent.status != "submitting":
        intent = registry.update_video(intent.local_id, status="submitting")
    try:
        video = await send()
    except OutcomeUnknown as exc:
        registry.update_video(
            intent.local_id,
            status="unknown",
            note="The request was sent but its answer was lost; a job may exist. It will be "
            f"reconciled from the backend's job list, never resubmitted. ({exc})",
        )
        raise OutcomeUnknown(
            f"{exc} The intent is recorded as {intent.local_id} with status 'unknown'; do not "
            "resubmit — sora-mcp looks for its job itself; get_video or list_videos show it.",
            request_id=exc.request_id,
        ) from exc
    except APIError as exc:
        _refused(registry, intent, exc, keep_refused=keep_refused)
        raise
    try:
        record = attach(registry, intent.local_id, video)
    except RegistryError as exc:
        if unrecorded is not None:
            unrecorded[intent.local_id] = video
        cost = f"about ${intent.estimated_cost_usd:.2f}"
        raise UnrecordedJob(
            f"The backend started job {video.id} ({cost}, billed), but the registry could not record "
            f"it: {exc} The job is kept and recorded as soon as the registry can be written; do not "
            f"resubmit — follow it with get_video('{video.id}').",
            record=intent.model_copy(update={"id": video.id, "status": _status(video)}),
            video=video,
        ) from exc
    return record


def attach(registry: RegistryStore, local_id: str, video: Video) -> VideoRecord:
    """Record `video` as the job of the request `local_id`, taking it back from a lost request
    that reconciliation matched it to meanwhile (the answer naming it is authoritative).

    Raises:
        RegistryError: the registry could not be written, or the job belongs to a record whose
            own answer named it.
    """
    try:
        record = _record(registry, local_id, video)
    except RegistryError:
        owner = registry.get_video(video.id)
        if owner is None or owner.local_id == local_id or FOUND_NOTE not in (owner.note or ""):
            raise
        log.warning("job %s was matched to lost request %s; it is %s's", video.id, owner.local_id, local_id)
        registry.update_video(
            owner.local_id,
            id=None,
            status="unknown",
            progress=0,
            remote_created_at=None,
            completed_at=None,
            expires_at=None,
            files={},
            note=RECLAIMED_NOTE,
        )
        record = _record(registry, local_id, video)
    return absorb(registry, record, video)


def record_unrecorded(registry: RegistryStore, unrecorded: Unrecorded) -> None:
    """Record the jobs the registry could not take earlier, while it now can."""
    for local_id, video in list(unrecorded.items()):
        try:
            attach(registry, local_id, video)
        except RegistryError as exc:
            log.warning("job %s still cannot be recorded: %s", video.id, exc)
            return
        del unrecorded[local_id]


def _record(registry: RegistryStore, local_id: str, video: Video) -> VideoRecord:
    return registry.record_submitted(
        local_id,
        video_id=video.id,
        status=_status(video),
        progress=video.progress or 0,
        remote_created_at=video.created_at,
    )


def _status(video: Video) -> str:
    return video.status if video.status in ("queued", "in_progress", "completed", "failed") else "queued"


def _refused(registry: RegistryStore, intent: VideoRecord, exc: APIError, *, keep_refused: bool) -> None:
    """The backend definitely refused: no job, no charge. Keep no phantom record — unless the
    caller keeps refusals (`submit_once`'s `keep_refused`)."""
    if not keep_refused:
        registry.discard_intent(intent.local_id)
    elif isinstance(exc, RateLimitError):
        # 429 means the request was not processed: no job exists, so the item may be sent
        # again later — by a caller that waits as asked, never by `submit_once`.
        registry.update_video(intent.local_id, status="pending")
    else:
        registry.update_video(
            intent.local_id,
            status="failed",
            error_code=getattr(exc, "code", None) or type(exc).__name__,
            error_message=str(exc),
        )
