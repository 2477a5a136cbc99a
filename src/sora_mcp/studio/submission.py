"""The money contract of one billable request: intent recorded before, id recorded after, sent
exactly once, and a lost answer left `unknown` for reconciliation — never resent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sora_mcp.api.models import Video
from sora_mcp.errors import APIError, OutcomeUnknown, RateLimitError
from sora_mcp.registry.records import VideoRecord
from sora_mcp.registry.store import Registry
from sora_mcp.studio.tracking import absorb


async def submit_once(
    registry: Registry,
    intent: VideoRecord,
    send: Callable[[], Awaitable[Video]],
    *,
    keep_refused: bool = False,
) -> VideoRecord:
    """Send ONE billable request: record the intent, call `send` once, record the id.

    `intent` may already be stored (e.g. a queued batch item); otherwise it is stored first.
    With `keep_refused`, a refused request leaves the record as 'failed' with the backend's
    error code (batch items must be reported) instead of discarding it — or as 'pending' after
    a 429, which is a refusal to process that may be sent again after Retry-After.

    Raises:
        OutcomeUnknown: the answer was lost; the record is left as 'unknown', never resent.
        APIError: the backend refused; the intent is discarded (no job, no charge).
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
            "resubmit — check list_videos later.",
            request_id=exc.request_id,
        ) from exc
    except APIError as exc:
        _refused(registry, intent, exc, keep_refused=keep_refused)
        raise
    record = registry.record_submitted(
        intent.local_id,
        video_id=video.id,
        status=video.status,
        progress=video.progress or 0,
        remote_created_at=video.created_at,
    )
    return absorb(registry, record, video)


def _refused(registry: Registry, intent: VideoRecord, exc: APIError, *, keep_refused: bool) -> None:
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
