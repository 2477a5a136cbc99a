"""Safe file handling: atomic writes, confinement of model-supplied paths, safe file names.

Paths and names reaching this module may come from a language model, which can be steered by
whatever text it has read. So a path is only honoured once it resolves (symlinks included)
inside a configured root, and file names are built from validated ids, never from free text.
Writes go to a temporary file beside the target and are renamed into place, so a crash leaves
either the old file or the new one, never half a video.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import BinaryIO

from sora_mcp.errors import InvalidRequest

_EXTENSIONS = {"video": "mp4", "thumbnail": "webp", "spritesheet": "jpg"}

# Folders the MCP client declared as its roots for the request being served (set by the server
# around each tool call that reads files): `confine` allows them besides the configured ones.
CLIENT_ROOTS: ContextVar[tuple[Path, ...]] = ContextVar("client_roots", default=())
# A leading letter or digit keeps names from looking like command-line options.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# Windows refuses these as file stems whatever the extension.
_RESERVED_STEMS = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"{dev}{n}" for dev in ("COM", "LPT") for n in range(1, 10)}
)


PRIVATE_FILE_MODE = 0o600
"""Every file sora-mcp writes is owner-only: videos, registry exports and batch inputs may hold
prompts and references the user did not mean to share with other accounts on the machine."""


def atomic_write_bytes(dest: Path, data: bytes, *, make_parents: bool = False) -> None:
    """Write `data` to `dest` atomically and durably (see `atomic_output`)."""
    with atomic_output(dest, make_parents=make_parents) as out:
        out.write(data)


@contextmanager
def atomic_output(dest: Path, *, make_parents: bool = False) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces `dest` only if the block completes (see `atomic_path`)."""
    with atomic_path(dest, make_parents=make_parents) as temp, temp.open("wb") as out:
        yield out


@contextmanager
def atomic_path(dest: Path, *, make_parents: bool = False) -> Iterator[Path]:
    """Yield the path of an empty temporary file that replaces `dest` only if the block completes.

    For writers that open the file by name themselves (PyAV, Pillow). The one atomic writer:
    the temporary file lives in `dest`'s folder (so the final rename is atomic) and is
    owner-only; on success it is fsynced, renamed over `dest` and the folder fsynced
    (`commit_temp`). If the block raises, the temporary file is removed and `dest` is untouched.
    Without `make_parents`, `dest`'s folder must already exist.
    """
    dest = Path(dest)
    if make_parents:
        dest.parent.mkdir(parents=True, exist_ok=True)
    temp = new_temp(dest)
    try:
        yield temp
        commit_temp(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def new_temp(dest: Path) -> Path:
    """An empty owner-only temporary file beside `dest`, named `.<dest name>.<random>.part`.

    The building block of `atomic_path`, for writers that cannot run inside a `with` block in
    one thread (the streaming download writes asynchronously): fill it, then `commit_temp`, or
    unlink it on failure.
    """
    # Keep the temporary name within file-name limits however long `dest`'s name is.
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name[:100]}.", suffix=".part")
    os.close(fd)
    return Path(name)


def commit_temp(temp: Path, dest: Path, *, mode: int = PRIVATE_FILE_MODE) -> None:
    """Make the finished `temp` durable as `dest`: fsync its content, set `mode`, rename it over
    `dest`, then fsync the folder so the rename itself survives a power cut."""
    fd = os.open(temp, os.O_RDWR)  # read-write: Windows refuses fsync on a read-only handle
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(temp, mode)
    os.replace(temp, dest)
    _fsync_directory(dest.parent)


def _fsync_directory(directory: Path) -> None:
    # Persists the rename itself; Windows cannot open a folder for fsync and does not need it.
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def confine(path: str | Path, roots: Sequence[Path]) -> Path:
    """Resolve `path` and return it only if it lies inside one of `roots` (by convention the
    output folder first, then the SORA_MCP_INPUT_DIRS folders) or a folder the client declared
    (`CLIENT_ROOTS`).

    `~` is expanded; a relative path is taken relative to `roots[0]`. Symlinks are resolved
    before the check (for the parts that exist), so a link pointing out of a root is refused.
    The file itself need not exist. A refusal names SORA_MCP_INPUT_DIRS with the exact value
    that would allow the file.

    Raises:
        InvalidRequest: NUL byte in the path, no roots configured, a path that cannot be
            resolved, or one outside every root; the message names the allowed folders.
    """
    text = os.fspath(path)
    configured = [Path(root) for root in roots[1:]]
    roots = [*roots, *CLIENT_ROOTS.get()]
    if "\x00" in text:
        raise InvalidRequest("the path contains a NUL byte; give a plain file path", param="path")
    if not roots:
        raise InvalidRequest(
            "no folders are configured for file access, so no path can be used", code="path_not_allowed"
        )
    try:
        allowed = [Path(root).expanduser().resolve(strict=False) for root in roots]
        candidate = Path(text).expanduser()
        if not candidate.is_absolute():
            candidate = allowed[0] / candidate
        resolved = candidate.resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # RuntimeError: symlink loop or unknown home (≤3.12)
        raise InvalidRequest(f"the path {text!r} cannot be resolved: {exc}", param="path") from exc
    for root in allowed:
        if resolved.is_relative_to(root):
            return resolved
    folders = ", ".join(str(root) for root in allowed)
    value = os.pathsep.join(str(folder) for folder in [*configured, resolved.parent])
    raise InvalidRequest(
        f"the path {text!r} is outside the folders sora-mcp may read ({folders}). Use a file inside "
        f"one of them, or allow its folder: set SORA_MCP_INPUT_DIRS={value} in the server's "
        "environment and restart it",
        param="path",
        code="path_not_allowed",
    )


def safe_filename(video_id: str, variant: str) -> str:
    """A file name for one variant of a video: `<id>.mp4`, `<id>.thumbnail.webp`,
    `<id>.spritesheet.jpg`. Ids that are not plain `[A-Za-z0-9_-]` (up to 128 characters,
    starting with a letter or digit) are replaced by a hash, so no id can name a path.

    Raises:
        InvalidRequest: `variant` is not video, thumbnail or spritesheet.
    """
    ext = _EXTENSIONS.get(variant)
    if ext is None:
        allowed = ", ".join(_EXTENSIONS)
        raise InvalidRequest(f"variant must be one of {allowed}, got {variant!r}", param="variant")
    if _SAFE_ID.fullmatch(video_id) and video_id.upper() not in _RESERVED_STEMS:
        stem = video_id
    else:
        digest = hashlib.sha256(video_id.encode("utf-8", "surrogatepass")).hexdigest()
        stem = f"id-{digest[:32]}"
    return f"{stem}.{ext}" if variant == "video" else f"{stem}.{variant}.{ext}"
