"""Registry records: what sora-mcp remembers about every video, character and batch.

These are authored by us and persisted as JSON, so they are strict: an unknown field or a value
of the wrong type is a bug (or a row written by a newer schema) and must fail loudly rather than
be carried along silently. Field docstrings become schema text when records are shown to an
assistant, so they are written for that reader.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from sora_mcp.errors import RegistryError

VideoStatus = Literal[
    "pending", "submitting", "queued", "in_progress", "completed", "failed", "unknown", "deleted"
]
UNFINISHED_STATUSES: frozenset[str] = frozenset({"pending", "submitting", "queued", "in_progress", "unknown"})
Relation = Literal["generate", "remix", "edit", "extension"]
BatchMode = Literal["native", "direct"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)


class VideoRecord(_Record):
    """One video job, from the moment we decided to submit it until it is deleted."""

    local_id: str
    """Our own id (uuid4 hex), written before the request is sent; never changes."""
    id: str | None = None
    """The backend's video id, once the backend has answered."""
    backend: str
    """Which backend holds the job: "emulator" or the API host name."""
    model: str
    prompt: str
    size: str
    seconds: int
    status: VideoStatus = "submitting"
    """"pending" while waiting in a local queue (not sent, not billed); "submitting" until the
    backend answers; "unknown" if the answer was lost (reconcile, never
    resubmit); otherwise the backend's status, or "deleted"."""
    progress: int = 0
    """Percent complete as last reported by the backend."""
    error_code: str | None = None
    error_message: str | None = None
    created_at: float
    """Local clock, epoch seconds, when the intent was recorded."""
    updated_at: float
    """Local clock, epoch seconds, of the last change to this record."""
    remote_created_at: int | None = None
    completed_at: int | None = None
    expires_at: int | None = None
    """When the backend drops the downloadable files (epoch seconds); download before then."""
    parent_id: str | None = None
    """Source video id for a remix, edit or extension."""
    relation: Relation = "generate"
    character_ids: list[str] = []
    image_reference: str | None = None
    """Short description of the first-frame image source (never the image itself)."""
    files: dict[str, str] = {}
    """Downloaded variants: variant name → absolute path on disk."""
    batch_id: str | None = None
    """Local id of the batch this video was submitted in, if any."""
    custom_id: str | None = None
    estimated_cost_usd: float = 0.0
    note: str | None = None
    fallback: str | None = None
    """When the backend lacked what was asked and something else was done instead: what was
    done, in one sentence (e.g. "Extended by a new clip from the last frame, stitched here")."""
    stitch_onto: str | None = None
    """An extension made by that fallback: the source video whose file comes first; this
    video's file is the source followed by the backend's new clip, joined on this machine."""


class CharacterRecord(_Record):
    """A reusable character uploaded to a backend."""

    id: str
    name: str
    """The name that must appear verbatim in prompts that use the character."""
    backend: str
    source: str
    """Short description of the clip the character was made from."""
    created_at: float
    reference: str | None = None
    """A character the backend could not make (no characters endpoint): the path of a frame
    of it, used as the first frame of clips that name it — an approximation."""


class BatchRecord(_Record):
    """A group of video jobs submitted together, natively (Batch API) or one by one ("direct")."""

    local_id: str
    id: str | None = None
    """The backend's batch id (native mode only), once known."""
    backend: str
    mode: BatchMode
    status: str
    created_at: float
    updated_at: float
    items: dict[str, str] = {}
    """custom_id → local_id of the video record made for that line."""
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    estimated_cost_usd: float = 0.0
    note: str | None = None
    input_path: str | None = None
    """The JSONL file of the batch's requests as validated (image references inlined); direct
    mode reads image references back from it when it resumes."""
    finished_at: float | None = None
    """Local clock when every item reached a final state (native: when the results were read)."""


Tracked = TypeVar("Tracked", "VideoRecord", "BatchRecord")


def changed(rec: Tracked, changes: dict[str, Any], *, now: float) -> Tracked:
    """`rec` with `changes` applied and validated, as both stores write it: the local id never
    changes, and `updated_at` moves to `now` unless the changes set it."""
    if changes.get("local_id", rec.local_id) != rec.local_id:
        raise RegistryError("a record's local_id never changes")
    data = rec.model_dump()
    data.update(changes)
    if data["updated_at"] == rec.updated_at:
        data["updated_at"] = now
    try:
        return type(rec).model_validate(data)
    except ValidationError as exc:
        raise RegistryError(f"invalid change to {type(rec).__name__} {rec.local_id!r}: {exc}") from exc
