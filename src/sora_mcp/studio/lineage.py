"""Lineage: which video was made from which, read from the registry.

Every remix, edit and extension records `parent_id` (the source's backend id) and `relation`;
a clip started from another clip's frame records `parent_id` with relation "generate". From
that this module answers "what was this made from", "what was made from this", and — for
extensions — how much of the per-source budget is left, so limits are enforced locally before
anything is spent.

The extension budget is counted the way the service counts it: every extension descending
from the original video through extensions (branches included), whatever became of it, except
those deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from sora_mcp import catalog
from sora_mcp.errors import InvalidRequest
from sora_mcp.registry.interface import RegistryStore
from sora_mcp.registry.records import Relation, VideoRecord


@dataclass(frozen=True)
class Link:
    """One edge of the lineage as seen from a video: the other video and how they relate."""

    id: str
    relation: Relation
    status: str | None
    """The other video's status, or None when the registry does not hold it."""


@dataclass(frozen=True)
class ExtensionBudget:
    """The limits of one more extension, counted along the lineage."""

    root_id: str
    """The original video every extension in this chain continues."""
    extensions_used: int
    """Extensions of the root, including the one being planned."""
    extensions_left: int
    total_seconds: int
    """Length of the stitched video the planned extension makes."""
    seconds_left: int
    """How many more seconds later extensions may add."""


def parent_link(registry: RegistryStore, record: VideoRecord) -> Link | None:
    """The video `record` was made from, or None for an original."""
    if record.parent_id is None:
        return None
    parent = registry.get_video(record.parent_id)
    return Link(id=record.parent_id, relation=record.relation, status=parent.status if parent else None)


def children_links(registry: RegistryStore, record: VideoRecord) -> list[Link]:
    """Videos made from `record`, oldest first, each with its relation to it."""
    children = registry.children(record)
    return [Link(id=c.id or c.local_id, relation=c.relation, status=c.status) for c in children]


def lineage_root(registry: RegistryStore, record: VideoRecord) -> VideoRecord:
    """The original video an extension chain started from (`record` itself if not an extension)."""
    seen = {record.local_id}
    while record.relation == "extension" and record.parent_id is not None:
        parent = registry.get_video(record.parent_id)
        if parent is None or parent.local_id in seen:
            break
        seen.add(parent.local_id)
        record = parent
    return record


def extensions_of(registry: RegistryStore, root: VideoRecord) -> list[VideoRecord]:
    """Every extension descending from `root` through extensions, except deleted ones."""
    found: list[VideoRecord] = []
    queue = [root]
    seen = {root.local_id}
    while queue:
        for child in registry.children(queue.pop()):
            if child.relation != "extension" or child.local_id in seen:
                continue
            seen.add(child.local_id)
            queue.append(child)
            if child.status != "deleted":
                found.append(child)
    return found


def plan_extension(registry: RegistryStore, source: VideoRecord, seconds: int) -> ExtensionBudget:
    """The budget after extending `source` by `seconds`, from the registry alone.

    Raises:
        InvalidRequest: the root already has the most extensions allowed, or the stitched
            video would be longer than allowed; the message says what is left.
    """
    root = lineage_root(registry, source)
    root_id = root.id or root.local_id
    used = len(extensions_of(registry, root))
    if used >= catalog.EXTENSIONS_PER_VIDEO:
        raise InvalidRequest(
            f"Video {root_id} already has {used} extensions, the most allowed per source video "
            f"({catalog.EXTENSIONS_PER_VIDEO}); nothing was sent. To go on, generate a new clip with "
            f"start_from='{source.id or source.local_id}' so it begins on this video's last frame.",
            param="video_id",
            code="extension_limit",
        )
    total = source.seconds + seconds
    if total > catalog.EXTENDED_MAX_TOTAL_SECONDS:
        room = catalog.EXTENDED_MAX_TOTAL_SECONDS - source.seconds
        fitting = [s for s in catalog.SECONDS if int(s) <= room]
        advice = (
            f"At most {room} s can still be added: use seconds={fitting[-1]}."
            if fitting
            else "It cannot be extended further; generate a new clip with start_from to continue."
        )
        raise InvalidRequest(
            f"Extending {source.id or source.local_id} ({source.seconds} s) by {seconds} s would make "
            f"{total} s; an extended video is at most {catalog.EXTENDED_MAX_TOTAL_SECONDS} s. "
            f"{advice} Nothing was sent.",
            param="seconds",
            code="extension_too_long",
        )
    return ExtensionBudget(
        root_id=root_id,
        extensions_used=used + 1,
        extensions_left=catalog.EXTENSIONS_PER_VIDEO - used - 1,
        total_seconds=total,
        seconds_left=catalog.EXTENDED_MAX_TOTAL_SECONDS - total,
    )
