"""The app-only tool that carries a video's local files into the studio iframe.

The iframe may not fetch anything (its CSP allows no domain), so the bytes travel as tool
results: an embedded `resource` block with the base64 blob, in chunks small enough for hosts
that cap a result near 1 MB. Only files the registry recorded for that video are read — the
caller names a video and a variant, never a path.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated, Literal

import anyio.to_thread
from mcp.server.apps import client_supports_apps
from mcp.server.mcpserver import Context
from mcp.types import BlobResourceContents, CallToolResult, EmbeddedResource
from pydantic import BaseModel, Field

from sora_mcp.errors import InvalidRequest
from sora_mcp.server.common import VideoId, studio_of, tool_errors
from sora_mcp.server.state import AppState

# 512 KiB of bytes is about 700 kB of base64: under the ~1 MB result cap of some hosts.
CHUNK_BYTES = 512 * 1024
MIME_TYPES = {"video": "video/mp4", "thumbnail": "image/webp"}
MediaVariant = Literal["video", "thumbnail"]


class MediaChunk(BaseModel):
    """Where this chunk sits in the file; the bytes are in the result's resource block."""

    video_id: str
    variant: MediaVariant
    mime_type: str
    size: int = Field(description="File bytes.")
    offset: int
    length: int
    done: bool = Field(description="Else call again at offset+length.")


@tool_errors
async def studio_media(
    video_id: VideoId,
    ctx: Context[AppState],
    variant: MediaVariant = "video",
    offset: Annotated[int, Field(ge=0, description="Byte offset.")] = 0,
) -> Annotated[CallToolResult, MediaChunk]:
    """FREE. The studio app's media: a downloaded video or thumbnail, as base64 chunks.
    Assistants use get_video / download instead."""
    if not client_supports_apps(ctx):
        # A client without Apps shows this tool to its model; megabytes of base64 help no one.
        raise InvalidRequest(
            "studio_media feeds the studio app, which this client does not display. Use get_video "
            "for a video's status and files, or download to fetch them.",
            code="apps_only",
        )
    record = studio_of(ctx).get_record(video_id)
    vid = record.id or record.local_id
    path = Path(record.files[variant]) if variant in record.files else None
    found = await anyio.to_thread.run_sync(_read_chunk, path, offset) if path else None
    if path is None or found is None:
        hint = "call download first" if record.status == "completed" else f"it is {record.status}"
        raise InvalidRequest(
            f"The {variant} of {vid} is not on this machine ({hint}).", code="not_downloaded", param="variant"
        )
    size, chunk = found
    if offset > size:
        raise InvalidRequest(
            f"offset {offset} is past the end of the {variant} of {vid} ({size} bytes).",
            code="offset_past_end",
            param="offset",
        )
    meta = MediaChunk(
        video_id=vid,
        variant=variant,
        mime_type=MIME_TYPES[variant],
        size=size,
        offset=offset,
        length=len(chunk),
        done=offset + len(chunk) >= size,
    )
    blob = BlobResourceContents(
        uri=path.as_uri(), mime_type=meta.mime_type, blob=base64.b64encode(chunk).decode("ascii")
    )
    return CallToolResult(
        content=[EmbeddedResource(type="resource", resource=blob)],
        structured_content=meta.model_dump(mode="json"),
    )


def _read_chunk(path: Path, offset: int) -> tuple[int, bytes] | None:
    if not path.is_file():
        return None
    with path.open("rb") as file:
        size = path.stat().st_size
        file.seek(min(offset, size))
        return size, file.read(CHUNK_BYTES)
