"""Streaming one asset to disk atomically: `dest` is either the whole file or untouched."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.to_thread

from sora_mcp.api._http import HTTPCore
from sora_mcp.errors import APIConnectionError, APITimeoutError
from sora_mcp.files import TempFile

_CHUNK_BYTES = 1 << 20

Verify = Callable[[Path], None]
"""Checks a finished download before it takes its final name; raises ValueError if it is not
whole (for an MP4: it must probe with the expected duration)."""


class IncompleteDownload(APIConnectionError):
    """The transfer ended but the file is not whole (short of its declared size, or its content
    does not check out); retried like a transfer cut midway."""

    kind = "incomplete_download"


async def download_within(
    core: HTTPCore,
    path: str,
    params: Mapping[str, str],
    dest: Path,
    *,
    budget: float | None,
    verify: Verify | None,
) -> Path:
    """`stream_to_file`, retried like any read (a cut transfer starts over), all of it within
    `budget` real seconds when given.

    Raises:
        APITimeoutError: the transfer did not end within `budget`.
    """

    async def attempt() -> Path:
        return await stream_to_file(core, path, params, dest, verify=verify)

    if budget is None:
        return await core.retrying(attempt)
    with anyio.move_on_after(max(0.0, budget)):
        return await core.retrying(attempt)
    raise APITimeoutError(
        f"GET {path} did not finish within its {budget:.0f} s budget; nothing was saved under "
        f"{dest.name}. Try again later (download, or get_video)."
    )


async def stream_to_file(
    core: HTTPCore, path: str, params: Mapping[str, str], dest: Path, *, verify: Verify | None = None
) -> Path:
    """GET `path` once and stream its body into the project's atomic writer (`files.TempFile`
    beside `dest`: owner-only, locked while written, fsynced and renamed on success). The body is
    accepted only if its size matches the declared Content-Length (when there is one) and
    `verify` passes. Any failure, cancellation included, removes the temporary before the error
    propagates. Never holds the body in memory.

    Raises:
        APIError: from `core.stream`, for an error answer or a transfer cut midway.
        IncompleteDownload: the body is short of (or beyond) its declared size, or `verify` failed.
    """
    temp = await anyio.to_thread.run_sync(TempFile, dest)
    try:
        received = 0
        declared: str | None = None
        # Opened and closed without an await, so a cancelled transfer can never leave it open.
        out = _open_for_writing(temp.path)
        try:
            async with core.stream(path, params=params) as response:
                declared = response.headers.get("content-length")
                async for chunk in response.aiter_bytes(_CHUNK_BYTES):
                    received += len(chunk)
                    # A plain buffered write, one worker-thread hop per MiB: the hop costs more
                    # than the write into the page cache, so chunks are large.
                    await anyio.to_thread.run_sync(out.write, chunk)
        finally:
            out.close()
        _check_size(path, declared, received)
        if verify is not None:
            await _verified(verify, temp.path, path)
        await anyio.to_thread.run_sync(temp.commit)  # the one fsync, at the end
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(temp.discard)
        raise
    return dest


def _open_for_writing(path: Path) -> BinaryIO:
    return path.open("wb")


def _check_size(path: str, declared: str | None, received: int) -> None:
    if declared is not None and declared.isdigit() and int(declared) != received:
        raise IncompleteDownload(
            f"GET {path} ended after {received} of the {declared} bytes it declared; the partial "
            "file was discarded."
        )


async def _verified(verify: Verify, file: Path, path: str) -> None:
    try:
        await anyio.to_thread.run_sync(verify, file)
    except ValueError as exc:
        raise IncompleteDownload(
            f"GET {path} delivered a file that is not whole ({exc}); it was discarded."
        ) from exc
