"""Move a registry between stores without losing a field (`sora-mcp registry export | import`).

The stream is JSON Lines: a header line, then one line per record — every video (whatever its
status, ids and files), every character, every batch (with its items) — exactly as the records
are, so importing into an empty store gives back the same records. Videos come first, because
batches point at them. Importing is idempotent: a record already there and identical is skipped;
one that differs is refused (the target is left as it was up to that line, and the message names
the record), so two registries are never silently merged.

    SORA_MCP_HOME=~/old sora-mcp registry export > registry.jsonl
    SORA_MCP_REGISTRY_URL=postgresql://… sora-mcp registry import < registry.jsonl
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from sora_mcp.errors import RegistryError
from sora_mcp.registry.interface import RegistryStore
from sora_mcp.registry.records import BatchRecord, CharacterRecord, VideoRecord

FORMAT = "sora-mcp-registry"
FORMAT_VERSION = 1
_KINDS: dict[str, type[VideoRecord] | type[CharacterRecord] | type[BatchRecord]] = {
    "video": VideoRecord,
    "character": CharacterRecord,
    "batch": BatchRecord,
}


@dataclass
class Counts:
    added: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return f"{self.added} record(s) added, {self.unchanged} already there"


def export_lines(store: RegistryStore) -> Iterator[str]:
    """Every record of `store` as JSON lines (header first, videos before batches)."""
    yield json.dumps({"format": FORMAT, "version": FORMAT_VERSION})
    videos = sorted(store.videos_since(float("-inf")), key=lambda r: (r.created_at, r.local_id))
    for video in videos:
        yield json.dumps({"video": video.model_dump(mode="json")})
    for character in reversed(store.list_characters()):
        yield json.dumps({"character": character.model_dump(mode="json")})
    for batch in reversed(store.list_batches()):
        yield json.dumps({"batch": batch.model_dump(mode="json")})


def import_lines(store: RegistryStore, lines: Iterable[str]) -> Counts:
    """Add the records of an export to `store`.

    Raises:
        RegistryError: the stream is not an export, a line is malformed, or a record already in
            `store` differs from the one in the stream (line number and id in the message).
    """
    counts = Counts()
    numbered = ((n, line) for n, line in enumerate(lines, 1) if line.strip())
    first = next(numbered, None)
    header = _parse(first[1], first[0]) if first else None
    if header != {"format": FORMAT, "version": FORMAT_VERSION}:
        raise RegistryError(
            f"not a sora-mcp registry export (expected a first line {FORMAT!r} version {FORMAT_VERSION})"
        )
    for number, line in numbered:
        data = _parse(line, number)
        if len(data) != 1 or next(iter(data)) not in _KINDS:
            raise RegistryError(f"line {number}: expected one of {', '.join(_KINDS)}, got {sorted(data)}")
        ((kind, fields),) = data.items()
        try:
            record = _KINDS[kind].model_validate_json(json.dumps(fields))
        except ValidationError as exc:
            raise RegistryError(f"line {number}: not a valid {kind} record: {exc}") from exc
        added = _add(store, record)
        counts.added += added
        counts.unchanged += not added
    return counts


def _parse(line: str, number: int) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RegistryError(f"line {number} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RegistryError(f"line {number} is not a JSON object")
    return data


def _add(store: RegistryStore, record: VideoRecord | CharacterRecord | BatchRecord) -> bool:
    """Store `record`; False when an identical one is already there. Raises on a different one."""
    existing: VideoRecord | CharacterRecord | BatchRecord | None
    if isinstance(record, VideoRecord):
        existing = store.get_video(record.local_id)
        if existing is None:
            store.record_intent(record)
    elif isinstance(record, CharacterRecord):
        existing = next((c for c in store.list_characters() if c.id == record.id), None)
        if existing is None:
            store.put_character(record)
    else:
        existing = store.get_batch(record.local_id)
        if existing is None:
            store.put_batch(record)
    if existing is not None and existing != record:
        key = record.id if isinstance(record, CharacterRecord) else record.local_id
        raise RegistryError(
            f"the target registry already has a different {type(record).__name__} {key!r}; "
            "import into an empty registry (nothing after this record was imported)"
        )
    return existing is None
