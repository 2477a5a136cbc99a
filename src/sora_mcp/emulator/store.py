"""Emulator state on disk, and the job lifecycle as a function of time.

Layout under `root` (one JSON file per object, each written atomically, so several apps or
processes can share a root and a restarted app sees every earlier object):

    videos/{video_id}.json        VideoRecord
    characters/{char_id}.json     CharacterRecord (+ {char_id}.mp4, the uploaded clip)
    files/{file_id}.json          FileRecord (+ {file_id}.bin, the content)
    batches/{batch_id}.json       BatchRecord
    inputs/{name}                 reference images and uploaded source videos of jobs
    media/{video_id}/             rendered video.mp4, thumbnail.webp, spritesheet.jpg (a cache)

No background task ever runs: a job's status, progress and timestamps are computed from its
`created_at` and `render_seconds` against the clock at the moment it is read (`video_phase`).
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from sora_mcp.files import atomic_write_bytes

ASSET_LIFETIME_SECONDS = 3600
# The first tenth of a render is spent queued, as the real service tended to report.
QUEUED_FRACTION = 0.1

_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Stored(_Record):
    """A record kept in its own JSON file, named by its id."""

    id: str


class Segment(_Record):
    """One stretch of a video's file. A video is its segments played in order: an extension
    is its source's segments plus a new one, so it can be re-rendered without the source."""

    prompt: str
    seconds: float
    video_id: str
    note: str | None = None
    characters: list[str] = Field(default_factory=list)
    # Name of a file under inputs/: image bytes for the first frame.
    first_frame: str | None = None
    # Name of a file under inputs/: an uploaded video used as is instead of rendering.
    upload: str | None = None
    # Frame rate for this segment's render; None means the app's `render_fps`. An extension of
    # an uploaded video renders at the upload's rate so the two parts can be joined.
    fps: int | None = None


class VideoRecord(_Stored):
    kind: Literal["create", "remix", "edit", "extension"] = "create"
    model: str
    prompt: str
    size: str
    seconds: str
    created_at: float
    # Wall-clock nanoseconds at creation: a tie-breaker for listing jobs created at the same
    # (fake) instant, stable across processes sharing the root.
    order_key: int
    render_seconds: float
    remixed_from_video_id: str | None = None
    source_video_id: str | None = None
    # Extensions: the video at the start of the chain, which limits are counted against.
    lineage_root: str | None = None
    fail_code: str | None = None
    fail_message: str | None = None
    segments: list[Segment]
    inputs: list[str] = Field(default_factory=list)


class CharacterRecord(_Stored):
    name: str
    created_at: int
    clip_seconds: float


class FileRecord(_Stored):
    bytes: int
    created_at: int
    filename: str
    purpose: str
    expires_at: int | None = None


class BatchItem(_Record):
    custom_id: str
    video_id: str | None = None
    # Set when the line was refused before a job was made: status and envelope error body.
    status_code: int | None = None
    error: dict[str, Any] | None = None


class BatchRecord(_Stored):
    endpoint: str
    input_file_id: str
    completion_window: str
    created_at: int
    metadata: dict[str, str] | None = None
    items: list[BatchItem] = Field(default_factory=list)
    errors: list[dict[str, Any]] | None = None
    # Exact clock readings (the wire shows whole seconds), so results are judged at the very
    # instant the batch ended.
    cancelled_at: float | None = None
    finished_at: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None


@dataclass(frozen=True)
class VideoPhase:
    """Where a job is at one instant."""

    status: Literal["queued", "in_progress", "completed", "failed"]
    progress: int
    completed_at: int | None
    expires_at: int | None
    ends_at: float

    @property
    def terminal(self) -> bool:
        return self.status in ("completed", "failed")


def video_phase(record: VideoRecord, now: float) -> VideoPhase:
    """The job's status at `now`: queued for the first tenth of its render time (progress 0),
    then in_progress rising 1..99, then completed (100) or failed at the end of it."""
    render = max(record.render_seconds, 1e-9)
    ends_at = record.created_at + render
    elapsed = now - record.created_at
    queued_for = render * QUEUED_FRACTION
    if now >= ends_at:
        if record.fail_code is not None:
            return VideoPhase("failed", 0, None, None, ends_at)
        completed_at = int(ends_at)
        return VideoPhase("completed", 100, completed_at, completed_at + ASSET_LIFETIME_SECONDS, ends_at)
    if elapsed < queued_for:
        return VideoPhase("queued", 0, None, None, ends_at)
    fraction = (elapsed - queued_for) / (render - queued_for)
    return VideoPhase("in_progress", min(99, max(1, 1 + int(98 * fraction))), None, None, ends_at)


def video_json(record: VideoRecord, now: float) -> dict[str, Any]:
    """The wire Video object at `now`."""
    phase = video_phase(record, now)
    error = None
    if phase.status == "failed":
        error = {"code": record.fail_code, "message": record.fail_message or record.fail_code}
    return {
        "id": record.id,
        "object": "video",
        "model": record.model,
        "status": phase.status,
        "progress": phase.progress,
        "created_at": int(record.created_at),
        "completed_at": phase.completed_at,
        "expires_at": phase.expires_at,
        "prompt": record.prompt,
        "size": record.size,
        "seconds": record.seconds,
        "remixed_from_video_id": record.remixed_from_video_id,
        "error": error,
    }


def is_valid_id(object_id: str) -> bool:
    """Ids become file names: anything else is simply not found."""
    return bool(_ID_PATTERN.match(object_id))


def new_id(prefix: str, hex_chars: int = 48) -> str:
    return prefix + secrets.token_hex(hex_chars // 2)


_R = TypeVar("_R", bound=_Stored)


class EmulatorStore:
    """Typed access to the JSON records and blobs under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for folder in ("videos", "characters", "files", "batches", "inputs", "media"):
            (root / folder).mkdir(parents=True, exist_ok=True)

    # -- generic -----------------------------------------------------------------------------

    def _path(self, folder: str, object_id: str, suffix: str = ".json") -> Path:
        return self.root / folder / f"{object_id}{suffix}"

    def _save(self, folder: str, record: _Stored) -> None:
        atomic_write_bytes(
            self._path(folder, record.id), record.model_dump_json().encode(), make_parents=True
        )

    def _load(self, folder: str, object_id: str, cls: type[_R]) -> _R | None:
        if not is_valid_id(object_id):
            return None
        try:
            text = self._path(folder, object_id).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return cls.model_validate(json.loads(text))

    # -- videos ------------------------------------------------------------------------------

    def save_video(self, record: VideoRecord) -> None:
        self._save("videos", record)

    def get_video(self, video_id: str) -> VideoRecord | None:
        return self._load("videos", video_id, VideoRecord)

    def list_videos(self) -> list[VideoRecord]:
        """Every video, oldest first."""
        records = []
        for path in (self.root / "videos").glob("*.json"):
            record = self._load("videos", path.stem, VideoRecord)
            if record is not None:  # deleted between glob and read
                records.append(record)
        records.sort(key=lambda r: (r.created_at, r.order_key, r.id))
        return records

    def delete_video(self, video_id: str) -> bool:
        record = self.get_video(video_id)
        if record is None:
            return False
        self._path("videos", video_id).unlink(missing_ok=True)
        for name in record.inputs:
            self.input_path(name).unlink(missing_ok=True)
        shutil.rmtree(self.media_dir(video_id), ignore_errors=True)
        return True

    def media_dir(self, video_id: str) -> Path:
        return self.root / "media" / video_id

    def input_path(self, name: str) -> Path:
        return self.root / "inputs" / name

    def save_input(self, name: str, data: bytes) -> None:
        atomic_write_bytes(self.input_path(name), data, make_parents=True)

    # -- characters --------------------------------------------------------------------------

    def save_character(self, record: CharacterRecord, clip: bytes) -> None:
        atomic_write_bytes(self._path("characters", record.id, ".mp4"), clip, make_parents=True)
        self._save("characters", record)

    def get_character(self, character_id: str) -> CharacterRecord | None:
        return self._load("characters", character_id, CharacterRecord)

    # -- files -------------------------------------------------------------------------------

    def save_file(self, record: FileRecord, content: bytes) -> None:
        # Content first: a record on disk always has its bytes.
        atomic_write_bytes(self.file_content_path(record.id), content, make_parents=True)
        self._save("files", record)

    def get_file(self, file_id: str) -> FileRecord | None:
        return self._load("files", file_id, FileRecord)

    def file_content_path(self, file_id: str) -> Path:
        return self._path("files", file_id, ".bin")

    # -- batches -----------------------------------------------------------------------------

    def save_batch(self, record: BatchRecord) -> None:
        self._save("batches", record)

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        return self._load("batches", batch_id, BatchRecord)
