"""Which container a local video file holds, decided from its first bytes before FFmpeg sees it.

Only MP4/MOV (ISO-BMFF) and Matroska/WebM are opened, each with its own demuxer named and MP4's
external data references off. FFmpeg left to guess would follow an HLS playlist, a concat list
or a `dref` to any file the process can read — outside the folders a user allowed, or a FIFO
that never answers. A path that is not a regular file is refused without being read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

# The first box of an ISO-BMFF file (MP4, MOV, 3GP) — ftyp in practice, the others in old
# QuickTime files — and the magic of an EBML (Matroska, WebM) file.
_ISO_BMFF_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot")
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"


def demuxer_for(path: Path) -> tuple[str, dict[str, str]]:
    """The FFmpeg demuxer and its options for the container `path` holds.

    Raises:
        ValueError: not a regular file, unreadable, or another container.
    """
    try:
        # Non-blocking: opening a FIFO for reading would otherwise wait for a writer for ever.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ValueError(f"{path} cannot be opened: {exc.strerror or exc}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{path} is not a regular file")
        head = os.read(fd, 12)
    except OSError as exc:
        raise ValueError(f"{path} cannot be read: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if len(head) >= 8 and head[4:8] in _ISO_BMFF_BOXES:
        return "mp4", {"enable_drefs": "0", "protocol_whitelist": "file"}
    if head.startswith(_EBML_MAGIC):
        return "matroska", {"protocol_whitelist": "file"}
    raise ValueError(
        f"{path.name} is not an MP4, MOV or WebM video; other containers (playlists included) are not opened"
    )
