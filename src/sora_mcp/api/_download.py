"""Streaming one asset to disk atomically: `dest` is either the whole file or untouched."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import anyio
import anyio.to_thread

from sora_mcp.api._http import HTTPCore
from sora_mcp.files import commit_temp, new_temp

_CHUNK_BYTES = 1 << 16


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
        async with await anyio.open_file(temp, "wb") as out, core.stream(path, params=params) as response:
            async for chunk in response.aiter_bytes(_CHUNK_BYTES):
                await out.write(chunk)
        await anyio.to_thread.run_sync(commit_temp, temp, dest)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.Path(temp).unlink(missing_ok=True)
        raise
    return dest
