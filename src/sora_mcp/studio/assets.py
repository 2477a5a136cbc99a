"""Files made on this machine when the backend cannot make them: thumbnails and spritesheets
from the MP4, and extensions stitched from the source and the backend's new clip.

Nothing gets an image name unless its magic bytes say it is that image: a gateway that ignores
`variant` answers a "thumbnail" request with the MP4, which must never be saved as `.webp`, let
alone shown to the model as a picture.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import anyio.to_thread

from sora_mcp.media.images import sniff_image
from sora_mcp.media.pictures import render_spritesheet, render_thumbnail
from sora_mcp.media.video import concat_videos

EXPECTED_FORMAT = {"thumbnail": "webp", "spritesheet": "jpeg"}


def is_expected_image(path: Path, variant: str) -> bool:
    """True when `path` starts with the magic bytes of the image format `variant` is saved as."""
    with path.open("rb") as handle:
        head = handle.read(16)
    return sniff_image(head) == EXPECTED_FORMAT[variant]


async def render_variant(video: Path, dest: Path, variant: str) -> None:
    """Write the thumbnail (WebP) or spritesheet (JPEG) of the local MP4 `video` to `dest`.

    Raises:
        ValueError: `video` is not a readable video.
    """
    render = render_thumbnail if variant == "thumbnail" else render_spritesheet
    await anyio.to_thread.run_sync(render, video, dest)


async def stitch(first: Path, second: Path, dest: Path) -> None:
    """`first` then `second` as one MP4 at `dest`: packets copied when the two streams match
    (codec, size, rate), else re-encoded. `dest` may be `second`.

    Raises:
        ValueError: the parts differ in frame size or rate, or one is not a video.
    """

    def work() -> None:
        with tempfile.TemporaryDirectory(dir=dest.parent) as scratch:
            joined = Path(scratch) / "joined.mp4"
            concat_videos([first, second], joined)
            joined.replace(dest)

    await anyio.to_thread.run_sync(work)
