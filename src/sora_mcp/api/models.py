"""Wire objects of the OpenAI Videos API, as pydantic models.

Lenient on purpose (`extra="allow"`): servers that speak this format add fields (`quality`,
`processing`-style statuses, provider ids) and a client that rejects them breaks for nothing.
Statuses are normalised by the client (see `profile.py`) before these models are built.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

VideoStatus = Literal["queued", "in_progress", "completed", "failed"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed"})
Variant = Literal["video", "thumbnail", "spritesheet"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class ErrorInfo(_Wire):
    """`error` on a failed Video, and the body of the error envelope."""

    code: str | None = None
    message: str = ""
    param: str | None = None
    type: str | None = None


class Video(_Wire):
    id: str
    object: str = "video"
    model: str | None = None
    status: str = "queued"
    progress: int | None = 0
    created_at: int | None = None
    completed_at: int | None = None
    expires_at: int | None = None
    prompt: str | None = None
    size: str | None = None
    seconds: str | None = None
    remixed_from_video_id: str | None = None
    error: ErrorInfo | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class VideoList(_Wire):
    object: str = "list"
    data: list[Video] = Field(default_factory=list)
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class VideoDeleted(_Wire):
    id: str
    object: str = "video.deleted"
    deleted: bool = True


class Character(_Wire):
    id: str
    object: str | None = None
    name: str | None = None
    created_at: int | None = None


class FileObject(_Wire):
    id: str
    object: str = "file"
    bytes: int | None = None
    created_at: int | None = None
    filename: str | None = None
    purpose: str | None = None


class RequestCounts(_Wire):
    total: int = 0
    completed: int = 0
    failed: int = 0


class Batch(_Wire):
    id: str
    object: str = "batch"
    endpoint: str | None = None
    input_file_id: str | None = None
    completion_window: str | None = None
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: int | None = None
    in_progress_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expires_at: int | None = None
    request_counts: RequestCounts | None = None
    metadata: dict[str, Any] | None = None
    errors: Any = None


BATCH_TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "expired", "cancelled"})
