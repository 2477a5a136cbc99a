"""Fetching the files of completed videos into the output folder, through the atomic writer."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sora_mcp.api.client import VideosClient
from sora_mcp.api.models import Variant
from sora_mcp.clock import Clock
from sora_mcp.errors import APIError, APIStatusError, AssetExpired, InvalidRequest, NotFoundError
from sora_mcp.files import safe_filename
from sora_mcp.registry.records import VideoRecord
from sora_mcp.registry.store import Registry

log = logging.getLogger(__name__)


@dataclass
class Downloads:
    """Downloads of one backend's files into `output_dir`, remembered in `registry`."""

    client: VideosClient
    registry: Registry
    clock: Clock
    output_dir: Path

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
                await self.client.download_content(record.id, dest, variant=variant)
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

    async def automatic(self, record: VideoRecord) -> VideoRecord:
        """The video and thumbnail of a newly completed video; a failure is noted, not raised."""
        if record.status != "completed" or "video" in record.files:
            return record
        try:
            return (await self.fetch(record, ("video", "thumbnail")))[0]
        except (APIError, AssetExpired) as exc:
            log.warning("automatic download of %s failed: %s", record.id, exc)
            return self.registry.update_video(record.local_id, note=f"Automatic download failed: {exc}")


def has_file(record: VideoRecord) -> bool:
    """True when `record` is completed and its MP4 is on this machine."""
    path = record.files.get("video")
    return record.status == "completed" and path is not None and Path(path).is_file()
