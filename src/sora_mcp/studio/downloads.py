"""Fetching the files of completed videos into the output folder, through the atomic writer.

Completion and download are separate states: a record is `completed` once the backend says so,
and has its file once the MP4 is whole on this machine — its size as declared and its duration
as expected, checked before it takes its final name. Every download has a total time budget.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.to_thread

from sora_mcp.api._download import Verify
from sora_mcp.api.client import VideosClient
from sora_mcp.api.models import Variant
from sora_mcp.clock import Clock
from sora_mcp.errors import (
    APIError,
    APIStatusError,
    AssetExpired,
    InvalidRequest,
    LocalFileError,
    NotFoundError,
)
from sora_mcp.files import safe_filename
from sora_mcp.media.video import probe
from sora_mcp.registry.interface import RegistryStore
from sora_mcp.registry.records import VideoRecord
from sora_mcp.studio.assets import EXPECTED_FORMAT, is_expected_image, render_variant, stitch

log = logging.getLogger(__name__)

AUTOMATIC: tuple[Variant, ...] = ("video", "thumbnail")
"""What a newly completed video gets without being asked."""

DOWNLOADS_AT_ONCE = 4
"""Transfers in flight at once. A batch finishing 200 clips together must not open 200
downloads, each then slower than the backend's patience (and retried from scratch)."""
DOWNLOAD_BUDGET_SECONDS = 300.0
"""Longest (real seconds) a call spends fetching one video's files when no wait bounds it."""
# A delivered MP4 must last what the job said, within this much (container rounding).
_DURATION_TOLERANCE = 0.5


@dataclass
class Downloads:
    """Downloads of one backend's files into `output_dir`, remembered in `registry`."""

    client: VideosClient
    registry: RegistryStore
    clock: Clock
    output_dir: Path
    _limiter: anyio.CapacityLimiter | None = field(default=None, init=False, repr=False)
    # (backend id, variant) → set when the transfer under way ends; a second caller waits for
    # it instead of fetching the same file again while the first copy may still arrive.
    _in_flight: dict[tuple[str, str], _Flight] = field(default_factory=dict, init=False, repr=False)

    async def fetch(
        self,
        record: VideoRecord,
        variants: Sequence[Variant],
        *,
        asked_as: str | None = None,
        budget: float | None = None,
    ) -> tuple[VideoRecord, dict[str, Path]]:
        """Fetch variants of a completed video (atomic writes, the MP4 checked whole) within
        `budget` real seconds in all (`DOWNLOAD_BUDGET_SECONDS` by default); the record with
        its files. `asked_as` is the id the caller used, for messages.

        Raises:
            InvalidRequest: the video is not completed.
            AssetExpired: the backend's files are gone.
            APITimeoutError: the budget ran out (what was fetched before is kept).
            LocalFileError: the file could not be written here (disk full, permissions).
        """
        if record.status != "completed" or record.id is None:
            raise InvalidRequest(
                f"Video {asked_as or record.local_id} is {record.status}, not completed; call "
                "get_video with wait_seconds first.",
                param="video_id",
                code="not_completed",
            )
        self.output_dir.mkdir(parents=True, exist_ok=True)
        deadline = anyio.current_time() + (DOWNLOAD_BUDGET_SECONDS if budget is None else max(0.0, budget))
        paths: dict[str, Path] = {}
        for variant in variants:
            dest = self.output_dir / safe_filename(record.id, variant)
            try:
                if variant == "video":
                    await self._video(record, dest, deadline)
                else:
                    record = await self._picture(record, variant, dest, paths.get("video"), deadline)
            except OSError as exc:
                raise LocalFileError(
                    f"The {variant} of {record.id} could not be saved in {self.output_dir}: "
                    f"{exc.strerror or exc}. Nothing was kept under its name; free some space (or fix the "
                    "folder), then call download again — the job itself is safe on the backend until "
                    f"expires_at={record.expires_at}.",
                    code=_errno_code(exc),
                ) from exc
            paths[variant] = dest
            # Merged into the latest record, not this call's copy: two callers fetching the same
            # video's files at once (a batch follow and the resumer) must not drop each other's.
            record = self.registry.mutate_video(record.local_id, _with_file(variant, dest))
        return record, paths

    async def _download_once(
        self, video_id: str, variant: Variant, dest: Path, *, budget: float, verify: Verify | None
    ) -> None:
        """One transfer per file at a time, at most DOWNLOADS_AT_ONCE transfers in all."""
        key = (video_id, variant)
        while (running := self._in_flight.get(key)) is not None:
            await running.done.wait()
            if running.succeeded:
                return  # the transfer we waited for brought the file
        flight = self._in_flight[key] = _Flight()
        try:
            if self._limiter is None:
                self._limiter = anyio.CapacityLimiter(DOWNLOADS_AT_ONCE)
            async with self._limiter:
                await self.client.download_content(
                    video_id, dest, variant=variant, budget=budget, verify=verify
                )
            flight.succeeded = True
        finally:
            del self._in_flight[key]
            flight.done.set()

    async def _one(self, record: VideoRecord, variant: Variant, dest: Path, deadline: float) -> None:
        assert record.id is not None
        expired = record.expires_at is not None and record.expires_at < self.clock.now()
        # An MP4 must probe whole and last what the job said (a stitched extension's backend file
        # is the new part alone, so only its probing is checked).
        seconds = record.seconds if record.stitch_onto is None else 0
        verify = _lasting(seconds) if variant == "video" else None
        budget = deadline - anyio.current_time()
        try:
            await self._download_once(record.id, variant, dest, budget=budget, verify=verify)
        except (NotFoundError, APIStatusError) as exc:
            if expired or (isinstance(exc, APIStatusError) and exc.status_code in (404, 410)):
                raise AssetExpired(
                    f"The {variant} of {record.id} is no longer available on the backend "
                    f"(expires_at={record.expires_at}). Files already saved: {record.files or 'none'}."
                ) from exc
            raise

    async def _video(self, record: VideoRecord, dest: Path, deadline: float) -> None:
        """The MP4; for an extension stitched here, its source's file followed by the new clip."""
        if record.stitch_onto is None:
            await self._one(record, "video", dest, deadline)
            return
        source = self.registry.get_video(record.stitch_onto)
        if source is None:
            raise InvalidRequest(f"The source {record.stitch_onto} of {record.id} is not in the registry.")
        if not has_file(source):
            source, _ = await self.fetch(source, ("video",), budget=deadline - anyio.current_time())
        await self._one(record, "video", dest, deadline)
        try:
            await stitch(Path(source.files["video"]), dest, dest)
        except ValueError as exc:
            self.registry.update_video(
                record.local_id, note=f"Saved as the backend made it: joining it to its source failed: {exc}"
            )
            raise InvalidRequest(
                f"Video {record.id} is saved as the backend made it (the new part only): joining it to "
                f"{source.id} failed ({exc}). Nothing more was spent.",
                code="stitch_failed",
            ) from exc

    async def _picture(
        self, record: VideoRecord, variant: Variant, dest: Path, video: Path | None, deadline: float
    ) -> VideoRecord:
        """The thumbnail or spritesheet, from the backend when it makes real ones, else made here
        from the MP4 (the record's `fallback` then says why)."""
        capabilities = self.client.capabilities
        if record.stitch_onto is not None:
            why = "the backend's picture would show only the new part of a stitched extension"
        else:
            why = capabilities.why_missing("variants") or ""
        if not why:
            await self._one(record, variant, dest, deadline)
            if await anyio.to_thread.run_sync(is_expected_image, dest, variant):
                return record
            await anyio.Path(dest).unlink(missing_ok=True)
            why = (
                f"the backend answered a {variant} request with something that is not a "
                f"{EXPECTED_FORMAT[variant].upper()} image (it ignores `variant`)"
            )
            capabilities.note("variants", why)
        if video is None:
            if not has_file(record):
                record, _ = await self.fetch(record, ("video",), budget=deadline - anyio.current_time())
            video = Path(record.files["video"])
        await render_variant(video, dest, variant)
        label = f"The {variant} was made on this machine from the MP4 because {why}."
        return self.registry.update_video(record.local_id, fallback=_joined(record.fallback, label))

    async def automatic(self, record: VideoRecord, *, budget: float | None = None) -> VideoRecord:
        """The video and thumbnail of a newly completed video, within `budget`; a failure is
        noted on the record, not raised (the next read or the resumer tries again)."""
        # Files are recorded one by one, so a video may be seen with its MP4 but not yet its
        # thumbnail while another caller is fetching it: ask for what is missing (a transfer
        # under way is joined, not repeated).
        missing: tuple[Variant, ...] = tuple(v for v in AUTOMATIC if v not in record.files)
        if record.status != "completed" or not missing:
            return record
        if budget is not None and budget <= 0:
            return record
        try:
            return (await self.fetch(record, missing, budget=budget))[0]
        except (APIError, AssetExpired, LocalFileError) as exc:
            log.warning("automatic download of %s failed: %s", record.id, exc)
            return self.registry.update_video(record.local_id, note=f"Automatic download failed: {exc}")


@dataclass
class _Flight:
    """One transfer under way: waiters learn when it ended and whether the file arrived."""

    done: anyio.Event = field(default_factory=anyio.Event)
    succeeded: bool = False


def _joined(existing: str | None, label: str) -> str:
    """`label` added to a record's fallback sentences, once."""
    if not existing:
        return label
    return existing if label in existing else f"{existing} {label}"


def _lasting(seconds: int) -> Callable[[Path], None]:
    def verify(path: Path) -> None:
        # probe raises ValueError for a file FFmpeg cannot read as a video (a cut MP4 has no moov).
        length = probe(path).seconds
        if seconds > 0 and abs(length - seconds) > _DURATION_TOLERANCE:
            raise ValueError(f"it lasts {length:.2f} s, not the {seconds} s of the job")

    return verify


def _errno_code(exc: OSError) -> str:
    return {errno.ENOSPC: "disk_full", errno.EDQUOT: "disk_full", errno.EACCES: "permission_denied"}.get(
        exc.errno or 0, "file_error"
    )


def has_file(record: VideoRecord) -> bool:
    """True when `record` is completed and its MP4 is on this machine."""
    path = record.files.get("video")
    return record.status == "completed" and path is not None and Path(path).is_file()


def _with_file(variant: str, dest: Path) -> Callable[[VideoRecord], VideoRecord]:
    def add(latest: VideoRecord) -> VideoRecord:
        return latest.model_copy(update={"files": {**latest.files, variant: str(dest)}})

    return add
