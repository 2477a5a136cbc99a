"""Finding videos in the registry by what a person or a model knows of them.

Filters arrive as the names people use — a character's name or id, a batch's local or backend id,
a parent's backend or local id — and are turned into the ids the records store. Used by the
`list_videos` tool and `sora-mcp list`.
"""

from __future__ import annotations

from sora_mcp.registry.interface import RegistryStore
from sora_mcp.registry.records import VideoRecord


def find_videos(
    registry: RegistryStore,
    *,
    status: str | None = None,
    model: str | None = None,
    text: str | None = None,
    character: str | None = None,
    batch: str | None = None,
    parent: str | None = None,
    limit: int = 20,
) -> list[VideoRecord]:
    """The records matching every given filter, newest first, at most `limit`."""
    return registry.list_videos(
        status=status,
        model=model,
        text=text,
        character_id=_character_id(registry, character),
        batch_id=_batch_id(registry, batch),
        parent_id=_parent_id(registry, parent),
        limit=limit,
    )


def _character_id(registry: RegistryStore, ref: str | None) -> str | None:
    if ref is None:
        return None
    found = registry.get_character(ref)
    return found.id if found else ref


def _batch_id(registry: RegistryStore, ref: str | None) -> str | None:
    # Videos remember their batch by its local id; the caller may know either id.
    if ref is None:
        return None
    found = registry.get_batch(ref)
    return found.local_id if found else ref


def _parent_id(registry: RegistryStore, ref: str | None) -> str | None:
    # Children point at their parent's backend id.
    if ref is None:
        return None
    found = registry.get_video(ref)
    return (found.id or found.local_id) if found else ref
