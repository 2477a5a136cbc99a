"""Deleting a video: on the backend when it can, in the registry always, on disk only when asked.

The registry record is never removed, only marked 'deleted', so ids and lineage stay readable
after a restart and nothing the user paid for disappears from the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import anyio

from sora_mcp.errors import APIStatusError, InvalidRequest, NotFoundError
from sora_mcp.files import confine
from sora_mcp.registry.records import VideoRecord
from sora_mcp.studio.studio import Studio

RemoteOutcome = Literal["deleted", "already_gone", "unsupported", "no_backend_id", "already_deleted"]


@dataclass(frozen=True)
class Deletion:
    """What `delete_video` did: the record (now 'deleted'), what happened on the backend, and
    which local files were removed or kept."""

    record: VideoRecord
    remote: RemoteOutcome
    files_deleted: list[str]
    files_kept: list[str]


async def delete_video(studio: Studio, key: str, *, delete_files: bool = False) -> Deletion:
    """Delete a video on the backend (when its profile offers that) and mark the record 'deleted'.

    Deleting twice is harmless. Local files are removed only with `delete_files`, and only
    inside the output folder.

    Raises:
        InvalidRequest: no such video, or its request has not been answered yet.
        APIError: the backend refused the deletion (the record is left unchanged).
    """
    record = studio.get_record(key)
    if record.status in ("pending", "submitting"):
        raise InvalidRequest(
            f"Video {key} is {record.status}: its request has not been answered yet. Try again once "
            "it has an id (list_videos).",
            param="video_id",
        )
    remote: RemoteOutcome
    if record.status == "deleted":
        remote = "already_deleted"
    elif record.id is None:
        remote = "no_backend_id"
    elif not studio.client.capabilities.has("delete"):
        remote = "unsupported"
    else:
        try:
            await studio.client.delete_video(record.id)
            remote = "deleted"
        except NotFoundError:
            remote = "already_gone"
        except APIStatusError:
            if studio.lacks("delete") is None:  # the client learns a missing route from its answer
                raise
            remote = "unsupported"
    deleted: list[str] = []
    kept = dict(record.files)
    if delete_files:
        for variant, path_text in record.files.items():
            try:
                path = confine(path_text, [studio.settings.output_dir])
            except InvalidRequest:
                continue  # written under another output folder: not ours to remove any more
            await anyio.Path(path).unlink(missing_ok=True)
            deleted.append(str(path))
            del kept[variant]
    record = studio.registry.update_video(record.local_id, status="deleted", files=kept)
    return Deletion(record=record, remote=remote, files_deleted=deleted, files_kept=list(kept.values()))
