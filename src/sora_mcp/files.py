"""Safe file handling: atomic writes, confinement of model-supplied paths, safe file names.

Paths and names reaching this module may come from a language model, which can be steered by
whatever text it has read. So a path is only honoured once it resolves (symlinks included)
inside a configured root, and file names are built from validated ids, never from free text.
Writes go to a temporary file beside the target and are renamed into place, so a crash leaves
either the old file or the new one, never half a video; the temporary files a killed process
leaves behind are recognised (no one holds their lock) and swept at the next start.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import BinaryIO

from sora_mcp.errors import InvalidRequest

try:  # advisory locks mark temporary files in use; Windows has none
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

_UNLOCKABLE_ORPHAN_SECONDS = 86_400.0

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
TEMP_SUFFIX = ".part"


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

    For writers that open the file by name themselves (PyAV, Pillow). The one atomic writer
    (`TempFile`): the temporary file lives in `dest`'s folder (so the final rename is atomic), is
    owner-only and locked while written; on success it is fsynced, renamed over `dest` and the
    folder fsynced. If the block raises, the temporary file is removed and `dest` is untouched.
    Without `make_parents`, `dest`'s folder must already exist.
    """
    dest = Path(dest)
    if make_parents:
        dest.parent.mkdir(parents=True, exist_ok=True)
    temp = TempFile(dest)
    try:
        yield temp.path
        temp.commit()
    except BaseException:
        temp.discard()
        raise


class TempFile:
    """An empty owner-only temporary file beside `dest`, named `.<dest name>.<random>.part`,
    held under an exclusive lock until it is committed or discarded — so `sweep_orphans` can tell
    the leftovers of a killed process from another process's write in progress.

    The building block of `atomic_path`, for writers that cannot run inside one `with` block in
    one thread (the streaming download writes asynchronously): fill `path`, then `commit`, or
    `discard` on failure.
    """

    def __init__(self, dest: Path) -> None:
        self.dest = Path(dest)
        # Keep the temporary name within file-name limits however long `dest`'s name is.
        fd, name = tempfile.mkstemp(
            dir=self.dest.parent, prefix=f".{self.dest.name[:100]}.", suffix=TEMP_SUFFIX
        )
        self.path = Path(name)
        self._fd: int | None = fd
        _lock(fd)

    def commit(self, *, mode: int = PRIVATE_FILE_MODE) -> None:
        """Make the finished file durable as `dest`: fsync its content, set `mode`, rename it
        over `dest`, then fsync the folder so the rename itself survives a power cut."""
        fd = self._fd
        if fd is None:
            raise ValueError(f"{self.path} was already committed or discarded")
        os.fsync(fd)  # flushes the file's data whichever descriptor wrote it
        os.chmod(self.path, mode)
        os.replace(self.path, self.dest)
        self._close()
        _fsync_directory(self.dest.parent)

    def discard(self) -> None:
        """Remove the temporary file (idempotent); `dest` is untouched."""
        self.path.unlink(missing_ok=True)
        self._close()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def sweep_orphans(folder: Path) -> list[Path]:
    """Remove the temporary files that killed processes left in `folder`; the removed paths.

    A temporary file still locked belongs to a write in progress (this process or another sharing
    the folder) and is kept. Where files cannot be locked (Windows), only those untouched for a
    day are removed.
    """
    removed: list[Path] = []
    try:
        candidates = [p for p in Path(folder).glob(f".*{TEMP_SUFFIX}") if p.is_file()]
    except OSError:
        return removed
    for path in candidates:
        try:
            if _orphaned(path):
                path.unlink(missing_ok=True)
                removed.append(path)
        except OSError:
            continue  # vanished or unreadable: not ours to judge
    return removed


def _orphaned(path: Path) -> bool:
    if fcntl is None:
        return time.time() - path.stat().st_mtime > _UNLOCKABLE_ORPHAN_SECONDS
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops the lock taken above
    return True


def _lock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


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
