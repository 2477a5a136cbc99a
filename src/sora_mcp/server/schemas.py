"""Structured outputs of the MCP tools. Field descriptions are what the assistant reads."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from sora_mcp import catalog
from sora_mcp.registry.records import CharacterRecord, VideoRecord
from sora_mcp.studio.downloads import has_file
from sora_mcp.studio.lineage import ExtensionBudget, Link


class OutputModel(BaseModel):
    """The base of every tool's structured output (and its parts): unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


class VideoError(OutputModel):
    code: str | None = Field(description="The backend's error code, e.g. moderation_blocked.")
    message: str | None = None

    @classmethod
    def of(cls, record: VideoRecord) -> VideoError | None:
        """The record's failure, or None when it has none."""
        if not (record.error_code or record.error_message):
            return None
        return cls(code=record.error_code, message=record.error_message)


class VideoView(OutputModel):
    """One video as the registry knows it."""

    id: str | None = Field(description="The backend's video id; pass it to get_video / download.")
    local_id: str = Field(description="sora-mcp's own id, recorded before the request was sent.")
    status: str = Field(
        description="submitting | queued | in_progress | completed | failed | deleted | unknown (answer "
        "lost: reconciled, never resent)."
    )
    progress: int
    model: str
    size: str
    seconds: int
    prompt: str
    created_at: str = Field(description="UTC, ISO 8601.")
    completed_at: str | None = None
    expires_at: str | None = Field(default=None, description="When the backend deletes the files.")
    error: VideoError | None = None
    files: dict[str, str] = Field(description="Downloaded variants: name → absolute path.")
    downloaded: bool  # the MP4 is whole here (a completed one without it is fetched by the next read)
    estimated_cost_usd: float
    parent_id: str | None = Field(
        default=None, description="The video this one was made from (see relation)."
    )
    relation: str = Field(
        description="generate, edit, remix or extension (of parent_id); a generate with a parent "
        "started on its frame."
    )
    image_reference: str | None = None
    character_ids: list[str] = Field(default_factory=list)
    note: str | None = None
    fallback: str | None = Field(
        default=None,
        description="What was done instead of what the backend lacks, and why (tell the user).",
    )

    @classmethod
    def of(cls, record: VideoRecord) -> VideoView:
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
            error=VideoError.of(record),
            files=dict(record.files),
            downloaded=has_file(record),
            estimated_cost_usd=record.estimated_cost_usd,
            parent_id=record.parent_id,
            relation=record.relation,
            image_reference=record.image_reference,
            character_ids=list(record.character_ids),
            note=record.note,
            fallback=record.fallback,
        )


class LineageLink(OutputModel):
    """Another video in this one's lineage."""

    id: str
    relation: str = Field(
        description="How the child was made from the parent: edit, remix, extension or generate (on "
        "its frame)."
    )
    status: str | None = Field(description="The other video's status; null if the registry lacks it.")

    @classmethod
    def of(cls, link: Link) -> LineageLink:
        return cls(id=link.id, relation=link.relation, status=link.status)


class GenerateResult(OutputModel):
    videos: list[VideoView] = Field(description="One entry per job started (one per variation).")
    estimated_cost_usd: float = Field(description="From list prices.")
    estimated_seconds_each: float
    simulated: bool = Field(description="True on the built-in emulator (nothing billed).")
    errors: list[str] = Field(description="Jobs that could not be started; the others are unaffected.")
    next_step: str


class GetVideoResult(OutputModel):
    video: VideoView
    still_running: bool = Field(description="True when the wait ended before the job finished.")
    parent: LineageLink | None = Field(default=None, description="What this video was made from.")
    children: list[LineageLink] = Field(
        default_factory=list, description="Videos made from this one, oldest first."
    )
    next_step: str


class WaitResult(OutputModel):
    videos: list[VideoView]
    still_running: list[str] = Field(description="Ids of jobs that had not finished when the wait ended.")
    next_step: str


class DownloadResult(OutputModel):
    video_id: str
    files: dict[str, str] = Field(description="variant → absolute path of the downloaded file.")
    fallback: str | None = Field(default=None, description="Set when a file was made here instead.")
    next_step: str


class ListVideosResult(OutputModel):
    videos: list[VideoView] = Field(description="Newest first.")
    count: int
    next_step: str


class ExtensionBudgetView(OutputModel):
    """The per-source extension limits after this extension."""

    root_id: str = Field(description="The original video this chain of extensions continues.")
    extensions_used: int = Field(description="Extensions of the original so far, this one included.")
    extensions_left: int = Field(
        description=f"How many more are allowed (at most {catalog.EXTENSIONS_PER_VIDEO} in all)."
    )
    total_seconds: int = Field(description="Length of the stitched video this extension makes.")
    seconds_left: int = Field(
        description=f"Seconds later extensions may still add (at most {catalog.EXTENDED_MAX_TOTAL_SECONDS} s in all)."
    )

    @classmethod
    def of(cls, budget: ExtensionBudget) -> ExtensionBudgetView:
        return cls(
            root_id=budget.root_id,
            extensions_used=budget.extensions_used,
            extensions_left=budget.extensions_left,
            total_seconds=budget.total_seconds,
            seconds_left=budget.seconds_left,
        )


class ExtendResult(OutputModel):
    video: VideoView = Field(description="The new video: its file will be the whole stitched sequence.")
    budget: ExtensionBudgetView
    estimated_cost_usd: float = Field(description="Billed for the new seconds only.")
    estimated_seconds: float = Field(description="Typical time until the job completes.")
    simulated: bool = Field(description="True on the built-in emulator (nothing billed).")
    fallback: str | None = Field(
        default=None, description="How it was done if the backend has no extensions."
    )
    problem: str | None = Field(default=None, description="The job started (billed) but following it failed.")
    next_step: str


class EditResult(OutputModel):
    video: VideoView = Field(description="The new video; the source is unchanged.")
    relation: str = Field(description="edit, or remix when the backend has no edits endpoint.")
    fallback: str | None = Field(default=None, description="Why it was sent as a remix or a new clip.")
    estimated_cost_usd: float = Field(description="Billed like a new clip of the source's length.")
    estimated_seconds: float = Field(description="Typical time until the job completes.")
    simulated: bool = Field(description="True on the built-in emulator (nothing billed).")
    problem: str | None = Field(default=None, description="The job started (billed) but following it failed.")
    next_step: str


class CharacterView(OutputModel):
    """A reusable character."""

    id: str
    name: str = Field(description="Write this exact name in prompts that use the character.")
    backend: str = Field(description="Where it was made; it can be used only there.")
    source: str
    created_at: str = Field(description="UTC, ISO 8601.")

    @classmethod
    def of(cls, record: CharacterRecord) -> CharacterView:
        return cls(
            id=record.id,
            name=record.name,
            backend=record.backend,
            source=record.source,
            created_at=_iso(record.created_at) or "",
        )


class CreateCharacterResult(OutputModel):
    character: CharacterView
    clip_path: str = Field(description="The 2–4 s clip that was uploaded (absolute path).")
    clip_seconds: float
    next_step: str


class ListCharactersResult(OutputModel):
    characters: list[CharacterView] = Field(description="Newest first.")
    count: int
    next_step: str


class DeleteVideoResult(OutputModel):
    video: VideoView = Field(description="The registry record, now with status 'deleted'.")
    remote: str = Field(
        description="deleted | already_gone | unsupported (registry only) | no_backend_id | already_deleted."
    )
    files_deleted: list[str] = Field(description="Local files removed (only with delete_files=true).")
    files_kept: list[str]
    next_step: str


def _iso(value: float | int | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, tz=UTC).isoformat(timespec="seconds")
