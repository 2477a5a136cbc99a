"""Streaming one asset to disk atomically: `dest` is either the whole file or untouched."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import anyio
import anyio.to_thread

from sora_mcp.api._http import HTTPCore

_CHUNK_BYTES = 1 << 16


async def stream_to_file(core: HTTPCore, path: str, params: Mapping[str, str], dest: Path) -> Path:
    """GET `path` once and stream its body into a temporary file beside `dest` (same folder, so
    the final rename is atomic), fsync it, then rename it over `dest`. Any failure, cancellation
    included, removes the temporary before the error propagates. Never holds the body in memory.

    Raises:
        APIError: from `core.stream`, for an error answer or a transfer cut midway.
    """
    fd, temp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    temp = anyio.Path(temp_name)
    try:
        async with await anyio.open_file(temp_name, "wb") as out:
            async with core.stream(path, params=params) as response:
                async for chunk in response.aiter_bytes(_CHUNK_BYTES):
                    await out.write(chunk)
            await out.flush()
            await anyio.to_thread.run_sync(os.fsync, out.wrapped.fileno())
        await temp.replace(dest)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await temp.unlink(missing_ok=True)
        raise
    return dest
