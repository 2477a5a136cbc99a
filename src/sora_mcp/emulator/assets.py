"""Rendered media of emulator jobs: made on the first download, then served from disk.

A video's MP4 is its segments (see `store.Segment`) rendered and joined in order; the thumbnail
and spritesheet are derived from the MP4. Each rendered segment starts on the last picture of
the one before it and carries the whole video's timeline, so a joined file plays as one shot
going on, not as clips cut together. Rendering is CPU work, so it runs in a worker thread
and the event loop keeps answering polls meanwhile. Files are written atomically by the render
module, so apps in other processes sharing the root at worst render the same file twice.
"""

from __future__ import annotations

import dataclasses
import io
import shutil
import tempfile
from pathlib import Path
from typing import Literal

import anyio
import anyio.to_thread
from PIL import Image

from sora_mcp import catalog
from sora_mcp.emulator.render import (
    RenderSpec,
    concat_videos,
    render_spritesheet,
    render_thumbnail,
    render_video,
)
from sora_mcp.emulator.store import EmulatorStore, Segment, VideoRecord
from sora_mcp.media.video import frame_at

Variant = Literal["video", "thumbnail", "spritesheet"]

FILE_NAMES: dict[Variant, str] = {
    "video": "video.mp4",
    "thumbnail": "thumbnail.webp",
    "spritesheet": "spritesheet.jpg",
}
CONTENT_TYPES: dict[Variant, str] = {
    "video": "video/mp4",
    "thumbnail": "image/webp",
    "spritesheet": "image/jpeg",
}


class Assets:
    """Finds or renders the files of completed jobs."""

    def __init__(self, store: EmulatorStore, *, fps: int) -> None:
        self._store = store
        self._fps = fps
        self._locks: dict[str, anyio.Lock] = {}

    async def path_for(self, record: VideoRecord, variant: Variant) -> Path:
        """The file of `variant` for a completed job, rendering it first if needed.

        Raises:
            ValueError: the render module refused the job (a bug or a corrupt upload).
        """
        dest = self._store.media_dir(record.id) / FILE_NAMES[variant]
        if dest.exists():
            return dest
        # One render per video at a time in this app; concurrent downloads wait for it.
        lock = self._locks.setdefault(record.id, anyio.Lock())
        async with lock:
            if dest.exists():
                return dest
            if variant == "video":
                await anyio.to_thread.run_sync(self._render, record, dest)
            else:
                video = await self.path_for(record, "video")
                derive = render_thumbnail if variant == "thumbnail" else render_spritesheet
                await anyio.to_thread.run_sync(derive, video, dest)
        return dest

    def _render(self, record: VideoRecord, dest: Path) -> None:
        width, height = catalog.parse_size(record.size)
        total = sum(segment.seconds for segment in record.segments)
        specs: list[RenderSpec | Path] = []
        start = 0.0
        for segment in record.segments:
            specs.append(self._spec(record, segment, width, height, timeline=(start, total)))
            start += segment.seconds
        if len(specs) == 1:
            only = specs[0]
            if isinstance(only, Path):
                shutil.copyfile(only, dest)
            else:
                render_video(only, dest)
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".parts-") as scratch:
            parts: list[Path] = []
            ending: Image.Image | None = None  # where the part before ended: the next one starts there
            for index, spec in enumerate(specs):
                if isinstance(spec, Path):
                    parts.append(spec)
                    ending = frame_at(spec)
                    continue
                part = Path(scratch) / f"part{index}.mp4"
                lead_in = _png(ending) if ending is not None else None
                ending = render_video(dataclasses.replace(spec, lead_in=lead_in), part)
                parts.append(part)
            concat_videos(parts, dest)

    def _spec(
        self, record: VideoRecord, segment: Segment, width: int, height: int, *, timeline: tuple[float, float]
    ) -> RenderSpec | Path:
        if segment.upload is not None:
            return self._store.input_path(segment.upload)
        first_frame = None
        if segment.first_frame is not None:
            first_frame = self._store.input_path(segment.first_frame).read_bytes()
        return RenderSpec(
            prompt=segment.prompt,
            width=width,
            height=height,
            seconds=segment.seconds,
            model=record.model,
            video_id=segment.video_id,
            first_frame=first_frame,
            characters=tuple(segment.characters),
            note=segment.note,
            fps=segment.fps or self._fps,
            timeline=timeline,
        )


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)  # handed straight to the next part: speed over size
    return out.getvalue()


def first_frame_png(video: Path) -> bytes:
    """The first frame of a video as PNG bytes, to stand in for an uploaded source."""
    image = frame_at(video, 0.0)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
