"""Fetching the files of completed videos into the output folder, through the atomic writer."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from sora_mcp.api.client import VideosClient
from sora_mcp.api.models import Variant
from sora_mcp.clock import Clock
from sora_mcp.errors import APIError, APIStatusError, AssetExpired, InvalidRequest, NotFoundError
from sora_mcp.files import safe_filename
from sora_mcp.registry.records import VideoRecord
from sora_mcp.registry.store import Registry

log = logging.getLogger(__name__)

DOWNLOADS_AT_ONCE = 4
"""Transfers in flight at once. A batch finishing 200 clips together must not open 200
downloads, each then slower than the backend's patience (and retried from scratch)."""


@dataclass
class Downloads:
    """Downloads of one backend's files into `output_dir`, remembered in `registry`."""

    client: VideosClient
    registry: Registry
    clock: Clock
    output_dir: Path
    _limiter: anyio.CapacityLimiter | None = field(default=None, init=False, repr=False)
    # (backend id, variant) → set when the transfer under way ends; a second caller waits for
    # it instead of fetching the same file again while the first copy may still arrive.
    _in_flight: dict[tuple[str, str], _Flight] = field(default_factory=dict, init=False, repr=False)

    async def fetch(
        self, record: VideoRecord, variants: Sequence[Variant], *, asked_as: str | None = None
    ) -> tuple[VideoRecord, dict[str, Path]]:
        """Fetch variants of a completed video (atomic writes); the record with its files.
        `asked_as` is the id the caller used, for messages.

        Raises:
            InvalidRequest: the video is not completed.
            AssetExpired: the backend's files are gone.
        """
        if record.status != "completed" or record.id is None:
            raise InvalidRequest(
                f"Video {asked_as or record.local_id} is {record.status}, not completed; call "
                "get_video with wait_seconds first.",
                param="video_id",
                code="not_completed",
            )
        expired = record.expires_at is not None and record.expires_at < self.clock.now()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        for variant in variants:
            dest = self.output_dir / safe_filename(record.id, variant)
            try:
                await self._download_once(record.id, variant, dest)
            except (NotFoundError, APIStatusError) as exc:
                if expired or (isinstance(exc, APIStatusError) and exc.status_code in (404, 410)):
                    raise AssetExpired(
                        f"The {variant} of {record.id} is no longer available on the backend "
                        f"(expires_at={record.expires_at}). Files already saved: {record.files or 'none'}."
                    ) from exc
                raise
            paths[variant] = dest
        files = {**record.files, **{k: str(v) for k, v in paths.items()}}
        record = self.registry.update_video(record.local_id, files=files)
        return record, paths

    async def _download_once(self, video_id: str, variant: Variant, dest: Path) -> None:
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
                await self.client.download_content(video_id, dest, variant=variant)
            flight.succeeded = True
        finally:
            del self._in_flight[key]
            flight.done.set()

    async def automatic(self, record: VideoRecord) -> VideoRecord:
        """The video and thumbnail of a newly completed video; a failure is noted, not raised."""
        if record.status != "completed" or "video" in record.files:
            return record
        try:
            return (await self.fetch(record, ("video", "thumbnail")))[0]
        except (APIError, AssetExpired) as exc:
            log.warning("automatic download of %s failed: %s", record.id, exc)
            return self.registry.update_video(record.local_id, note=f"Automatic download failed: {exc}")


@dataclass
class _Flight:
    """One transfer under way: waiters learn when it ended and whether the file arrived."""

    done: anyio.Event = field(default_factory=anyio.Event)
    succeeded: bool = False


def has_file(record: VideoRecord) -> bool:
    """True when `record` is completed and its MP4 is on this machine."""
    path = record.files.get("video")
    return record.status == "completed" and path is not None and Path(path).is_file()
