"""Structured outputs of the MCP tools. Field descriptions are what the assistant reads."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from sora_mcp.records import VideoRecord


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VideoError(_Out):
    code: str | None = Field(description="The backend's error code, e.g. moderation_blocked.")
    message: str | None = None


class VideoView(_Out):
    """One video as the registry knows it."""

    id: str | None = Field(description="The backend's video id; pass it to get_video / download.")
    local_id: str = Field(description="sora-mcp's own id, recorded before the request was sent.")
    status: str = Field(
        description="submitting | queued | in_progress | completed | failed | unknown | deleted. "
        "'unknown' means the request's answer was lost; it is reconciled, never resubmitted."
    )
    progress: int
    model: str
    size: str
    seconds: int
    prompt: str
    created_at: str = Field(description="When the request was made (UTC, ISO 8601).")
    completed_at: str | None = None
    expires_at: str | None = Field(
        default=None, description="When the backend deletes the files; they are downloaded before that."
    )
    error: VideoError | None = None
    files: dict[str, str] = Field(description="Downloaded variants: name → absolute path on this machine.")
    estimated_cost_usd: float
    parent_id: str | None = None
    relation: str
    image_reference: str | None = None
    note: str | None = None

    @classmethod
    def of(cls, record: VideoRecord) -> VideoView:
        error = (
            VideoError(code=record.error_code, message=record.error_message)
            if record.error_code or record.error_message
            else None
        )
        return cls(
            id=record.id,
            local_id=record.local_id,
            status=record.status,
            progress=record.progress,
            model=record.model,
            size=record.size,
            seconds=record.seconds,
            prompt=record.prompt,
            created_at=_iso(record.created_at) or "",
            completed_at=_iso(record.completed_at),
            expires_at=_iso(record.expires_at),
            error=error,
            files=dict(record.files),
            estimated_cost_usd=record.estimated_cost_usd,
            parent_id=record.parent_id,
            relation=record.relation,
            image_reference=record.image_reference,
            note=record.note,
        )


class GenerateResult(_Out):
    videos: list[VideoView] = Field(description="One entry per job started (one per variation).")
    estimated_cost_usd: float = Field(description="Estimated total for all jobs, from list prices.")
    estimated_seconds_each: float = Field(description="Typical time until each job completes.")
    simulated: bool = Field(
        description="True when the backend is the built-in emulator (no real video model)."
    )
    errors: list[str] = Field(description="Jobs that could not be started; the others are unaffected.")
    next_step: str


class GetVideoResult(_Out):
    video: VideoView
    still_running: bool = Field(description="True when the wait ended before the job finished.")
    next_step: str


class WaitResult(_Out):
    videos: list[VideoView]
    still_running: list[str] = Field(description="Ids of jobs that had not finished when the wait ended.")
    next_step: str


class DownloadResult(_Out):
    video_id: str
    files: dict[str, str] = Field(description="variant → absolute path of the downloaded file.")
    next_step: str


class ListVideosResult(_Out):
    videos: list[VideoView] = Field(description="Newest first.")
    count: int
    next_step: str


def _iso(value: float | int | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, tz=UTC).isoformat(timespec="seconds")
