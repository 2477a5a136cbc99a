"""Streaming one asset to disk atomically: `dest` is either the whole file or untouched."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.to_thread

from sora_mcp.api._http import HTTPCore
from sora_mcp.files import commit_temp, new_temp

_CHUNK_BYTES = 1 << 20


async def stream_to_file(core: HTTPCore, path: str, params: Mapping[str, str], dest: Path) -> Path:
    """GET `path` once and stream its body into the project's atomic writer (`files.new_temp`
    beside `dest`, then `files.commit_temp`: fsync, owner-only, rename, folder fsync). Any
    failure, cancellation included, removes the temporary before the error propagates. Never
    holds the body in memory.

    Raises:
        APIError: from `core.stream`, for an error answer or a transfer cut midway.
    """
    temp = await anyio.to_thread.run_sync(new_temp, dest)
    try:
        # Opened and closed without an await, so a cancelled transfer can never leave it open.
        out = _open_for_writing(temp)
        try:
            async with core.stream(path, params=params) as response:
                async for chunk in response.aiter_bytes(_CHUNK_BYTES):
                    # A plain buffered write, one worker-thread hop per MiB: the hop costs more
                    # than the write into the page cache, so chunks are large.
                    await anyio.to_thread.run_sync(out.write, chunk)
        finally:
            out.close()
        await anyio.to_thread.run_sync(commit_temp, temp, dest)  # the one fsync, at the end
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.Path(temp).unlink(missing_ok=True)
        raise
    return dest


def _open_for_writing(path: Path) -> BinaryIO:
    return path.open("wb")
