"""Previews of a video file: a WebP thumbnail of its middle frame and a JPEG spritesheet of up to
25 evenly spaced frames, each written atomically (`files.atomic_path`).

Pillow is imported by the functions that draw, not by this module (see `video.py`).
"""

from __future__ import annotations

import contextlib
import itertools
import math
from pathlib import Path

from sora_mcp.files import atomic_path
from sora_mcp.media.video import decode_frames, frame_at, probe, to_image

THUMBNAIL_MAX_SIDE = 640
SPRITESHEET_MAX_TILES = 25
_TILE_MAX_SIDE = 256


def render_thumbnail(video: Path, dest: Path) -> None:
    """Write a WebP of the video's middle frame to `dest` (atomically): same aspect ratio, at
    most 640 px on the long side.

    Raises:
        ValueError: `video` is not a readable video.
    """
    from PIL import Image

    image = frame_at(video, probe(video).seconds / 2)
    image.thumbnail((THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE), Image.Resampling.LANCZOS)
    with atomic_path(dest, make_parents=True) as tmp:
        image.save(tmp, format="WEBP", quality=80)


def render_spritesheet(video: Path, dest: Path) -> None:
    """Write a JPEG grid of up to 25 evenly spaced frames (5x5; fewer for very short videos)
    to `dest` (atomically), in time order row by row, each tile in the video's aspect ratio and
    at most 256 px on its long side.

    Raises:
        ValueError: `video` is not a readable video.
    """
    from PIL import Image

    info = probe(video)
    count = min(SPRITESHEET_MAX_TILES, info.frames)
    wanted = {round(k * (info.frames - 1) / max(1, count - 1)) for k in range(count)}
    scale = min(1.0, _TILE_MAX_SIDE / max(info.width, info.height))
    tile = (max(1, round(info.width * scale)), max(1, round(info.height * scale)))
    columns = math.ceil(math.sqrt(count))
    sheet = Image.new("RGB", (columns * tile[0], math.ceil(count / columns) * tile[1]))
    placed = 0
    with contextlib.closing(decode_frames(video)) as frames:
        for index, frame in enumerate(itertools.islice(frames, max(wanted) + 1)):
            if index in wanted:
                # swscale shrinks and converts in one pass, several times faster than Pillow here.
                small = frame.reformat(width=tile[0], height=tile[1], format="rgb24", interpolation="AREA")
                sheet.paste(to_image(small), ((placed % columns) * tile[0], (placed // columns) * tile[1]))
                placed += 1
    with atomic_path(dest, make_parents=True) as tmp:
        sheet.save(tmp, format="JPEG", quality=80)
