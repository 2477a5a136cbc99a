"""The persistent registry: every video, character and batch sora-mcp has ever started.

It is the memory that makes "never pay twice, never lose a job" possible: an intent is written
before a billable request is sent, the backend id right after, and unfinished jobs are found
here after a crash. Several processes may share one registry folder on a local disk.

This is the embedded store (diskcache, see `disk` for its safety settings and `schema` for the
key layout and migrations); `interface.RegistryStore` is the contract any other store meets.
Read-modify-write happens inside one transaction (an SQLite write lock), so concurrent
processes never lose each other's updates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sora_mcp.errors import RegistryError
from sora_mcp.registry import index
from sora_mcp.registry.disk import open_cache
from sora_mcp.registry.disk_calls import DiskCalls
from sora_mcp.registry.disk_fleet import DiskFleet
from sora_mcp.registry.interface import RegistryStore, Reservation, SpendLimit
from sora_mcp.registry.keys import BATCH, BATCH_INDEX, CHARACTER, VIDEO, VIDEO_INDEX, name_key
from sora_mcp.registry.records import BatchRecord, CharacterRecord, VideoRecord
from sora_mcp.registry.schema import SCHEMA_VERSION, ensure_schema

__all__ = ["SCHEMA_VERSION", "Registry", "Reservation", "SpendLimit"]


class Registry(DiskFleet, DiskCalls):
    """Records of videos, characters and batches, persisted in a diskcache folder.

    Synchronous (diskcache is); async callers run methods in a worker thread. Thread-safe and
    process-safe on a local disk. Every write that spans several keys is one transaction.
    Records are looked up by local id or by backend id interchangeably.
    """

    # ---------------------------------------------------------------- lifecycle

    @classmethod
    def open(cls, directory: Path, *, now: Callable[[], float] = time.time) -> Registry:
        """Open (creating if needed) the registry in `directory`, owner-only, migrating an older one.

        `now` supplies `updated_at` timestamps (inject a FakeClock's `now` in tests).

        Raises:
            RegistryError: the folder cannot be made private, the database cannot be opened, its
                eviction policy cannot be forced to "none", or its schema is newer than this
                sora-mcp's (refused, never misread) or cannot be migrated.
        """
        cache = open_cache(directory)
        try:
            ensure_schema(cache, directory, now)
        except BaseException:
            cache.close()
            raise
        return cls(cache, directory, now)

    def close(self) -> None:
        self._cache.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---------------------------------------------------------------- videos

    def record_intent(self, rec: VideoRecord) -> VideoRecord:
        """Store a new video record before its request is sent.

        Raises:
            RegistryError: a record with the same local_id already exists.
        """
        with self._transaction():
            self._add_intents([rec])
        return rec

    def record_intents(
        self,
        recs: Sequence[VideoRecord],
        *,
        limit: SpendLimit | None = None,
        key: str | None = None,
        key_since: float | None = None,
        tool: str = "",
    ) -> Reservation:
        """Store new records as one unit, if their cost fits `limit`: the spend is read and the
        records written in one write transaction, so concurrent callers (other processes too)
        can never together spend past the limit. Refused: nothing is written. A used
        idempotency `key` writes nothing and answers its first call's records (`replayed`).

        Raises:
            RegistryError: a record with one of these local_ids already exists.
        """
        cost = sum(rec.estimated_cost_usd for rec in recs)
        with self._transaction():
            if key is not None and (found := self._keyed(key, key_since)) is not None:
                return Reservation(accepted=False, spent_usd=0.0, cost_usd=cost, replayed=True, records=found)
            spent = index.spent_since(self._cache, limit.since) if limit is not None else 0.0
            if limit is not None and spent + cost > limit.limit_usd + 1e-9:
                return Reservation(accepted=False, spent_usd=spent, cost_usd=cost)
            self._add_intents(recs)
            if key is not None:
                self._bind_key(key, tool, recs)
        return Reservation(accepted=True, spent_usd=spent, cost_usd=cost)

    def _add_intents(self, recs: Sequence[VideoRecord]) -> None:
        for rec in recs:
            if VIDEO + rec.local_id in self._cache:
                raise RegistryError(f"video record {rec.local_id!r} already exists")
            self._store(VIDEO, VIDEO_INDEX, rec, previous=None)

    def record_submitted(
        self,
        local_id: str,
        *,
        video_id: str,
        status: str,
        progress: int,
        remote_created_at: int | None,
    ) -> VideoRecord:
        """Attach the backend's id and first status to an intent, with its index, atomically.

        Raises:
            RegistryError: no record for `local_id`, or `video_id` already belongs to another record.
        """
        changes = {
            "id": video_id,
            "status": status,
            "progress": progress,
            "remote_created_at": remote_created_at,
        }
        with self._transaction():
            rec = self._require(VIDEO, local_id, VideoRecord)
            new = self._apply(rec, changes)
            self._store(VIDEO, VIDEO_INDEX, new, previous=rec)
        return new

    def discard_intent(self, local_id: str) -> None:
        """Forget an intent the backend definitely refused, or one never sent ("pending"): no
        job, no charge. Its share of the spend is released with it.

        Raises:
            RegistryError: no such record, or it already has a backend id (never forget a job).
        """
        with self._transaction():
            rec = self._require(VIDEO, local_id, VideoRecord)
            if rec.id is not None or rec.status not in ("submitting", "pending"):
                raise RegistryError(
                    f"video record {local_id!r} is {rec.status} with id {rec.id!r}; not discarding it"
                )
            self._unbind_key(local_id)
            self._cache.delete(VIDEO + local_id)
            index.delete_video(self._cache, local_id)

    def update_video(self, key: str, **changes: Any) -> VideoRecord:
        """Change fields of the record for `key` (local id or backend id) and bump `updated_at`.

        Raises:
            RegistryError: no such record, or the changes do not validate.
        """
        with self._transaction():
            rec = self._require_tracked(VIDEO, VIDEO_INDEX, key, VideoRecord)
            new = self._apply(rec, changes)
            self._store(VIDEO, VIDEO_INDEX, new, previous=rec)
        return new

    def mutate_video(self, key: str, fn: Callable[[VideoRecord], VideoRecord]) -> VideoRecord:
        """Replace the record for `key` with `fn(record)`, inside one transaction.

        `fn` sees the latest stored record and no other process can write in between, so changes
        computed from the old value (counters, merges of `files`) are never lost. `fn` must not
        touch the registry. `updated_at` is bumped unless `fn` set it.

        Raises:
            RegistryError: no such record, or the result does not validate or changes local_id.
        """
        with self._transaction():
            rec = self._require_tracked(VIDEO, VIDEO_INDEX, key, VideoRecord)
            result = fn(rec)
            if not isinstance(result, VideoRecord):
                raise RegistryError(f"mutate_video expects a VideoRecord back, got {type(result).__name__}")
            # Field values as they are, not model_dump(): `fn` may have used model_copy(update=...),
            # which skips validation, and dumping unvalidated values only warns.
            new = self._apply(rec, dict(result))
            self._store(VIDEO, VIDEO_INDEX, new, previous=rec)
        return new

    def get_video(self, key: str) -> VideoRecord | None:
        """The record whose backend id or local id is `key`, or None."""
        return self._get_tracked(VIDEO, VIDEO_INDEX, key, VideoRecord)

    def list_videos(
        self,
        *,
        status: str | None = None,
        model: str | None = None,
        text: str | None = None,
        parent_id: str | None = None,
        batch_id: str | None = None,
        character_id: str | None = None,
        limit: int = 50,
    ) -> list[VideoRecord]:
        """Records matching every given filter, newest first (by `created_at`), at most `limit`.

        `text` matches case-insensitively anywhere in the prompt or the note.
        """
        with self._guard():
            local_ids = index.find_videos(
                self._cache,
                status=status,
                model=model,
                text=text,
                parent_ids=() if parent_id is None else (parent_id,),
                batch_id=batch_id,
                character_id=character_id,
                limit=max(0, limit),
            )
        return self._videos(local_ids)

    def children(self, rec: VideoRecord) -> list[VideoRecord]:
        """Videos made from `rec` (their parent_id is its backend id or its local id), oldest first."""
        parents = [rec.local_id] if rec.id is None else [rec.local_id, rec.id]
        with self._guard():
            local_ids = index.find_videos(self._cache, parent_ids=parents, oldest_first=True)
        return self._videos(local_ids)

    def spent_since(self, since: float) -> float:
        """Estimated USD of every video recorded at or after `since` (epoch seconds)."""
        with self._guard():
            return index.spent_since(self._cache, since)

    def videos_since(self, since: float) -> list[VideoRecord]:
        """Every video record created at or after `since` (epoch seconds), in no order."""
        with self._guard():
            local_ids = index.find_videos(self._cache, since=since, oldest_first=True)
        return self._videos(local_ids)

    def unfinished_videos(self) -> list[VideoRecord]:
        """Records still submitting, queued, in progress or unknown, oldest first (resume order)."""
        with self._guard():
            local_ids = index.unfinished(self._cache)
        return self._videos(local_ids)

    def _videos(self, local_ids: list[str]) -> list[VideoRecord]:
        # A row deleted between the query and the read is simply gone.
        return [rec for local_id in local_ids if (rec := self._read(VIDEO + local_id, VideoRecord))]

    # ---------------------------------------------------------------- characters

    def put_character(self, rec: CharacterRecord, *, key: str | None = None) -> CharacterRecord:
        """Store (or replace) a character record under its id, with its name index, atomically;
        with `key`, the idempotency key its call holds is answered by it in the same step.

        Raises:
            RegistryError: no call holds `key`.
        """
        with self._transaction():
            if key is not None:
                self._answer_character_key(key, rec.id)
            previous = self._read(CHARACTER + rec.id, CharacterRecord)
            if previous is not None and name_key(previous.name) != name_key(rec.name):
                self._set_named(previous.name, self._named(previous.name) - {rec.id})
            self._set_named(rec.name, self._named(rec.name) | {rec.id})
            self._cache.set(CHARACTER + rec.id, rec.model_dump_json())
        return rec

    def get_character(self, key: str) -> CharacterRecord | None:
        """The character whose id is `key`, else the newest whose name is `key` (exact match
        first, then case-insensitive), else None."""
        found = self._read(CHARACTER + key, CharacterRecord)
        if found is not None:
            return found
        named = [
            rec for char_id in self._named(key) if (rec := self._read(CHARACTER + char_id, CharacterRecord))
        ]
        named.sort(key=lambda rec: rec.created_at, reverse=True)
        exact = next((rec for rec in named if rec.name == key), None)
        return exact or next(iter(named), None)

    def list_characters(self) -> list[CharacterRecord]:
        """Every character record, newest first."""
        found = self._scan(CHARACTER, CharacterRecord)
        found.sort(key=lambda rec: rec.created_at, reverse=True)
        return found

    # ---------------------------------------------------------------- batches

    def put_batch(self, rec: BatchRecord) -> BatchRecord:
        """Store (or replace) a batch record and its backend-id index, atomically.

        Raises:
            RegistryError: its backend id already belongs to another batch.
        """
        with self._transaction():
            previous = self._read(BATCH + rec.local_id, BatchRecord)
            self._store(BATCH, BATCH_INDEX, rec, previous=previous)
        return rec

    def update_batch(self, key: str, **changes: Any) -> BatchRecord:
        """Change fields of the batch for `key` (local id or backend id) and bump `updated_at`.

        Raises:
            RegistryError: no such batch, or the changes do not validate.
        """
        with self._transaction():
            rec = self._require_tracked(BATCH, BATCH_INDEX, key, BatchRecord)
            new = self._apply(rec, changes)
            self._store(BATCH, BATCH_INDEX, new, previous=rec)
        return new

    def get_batch(self, key: str) -> BatchRecord | None:
        """The batch whose backend id or local id is `key`, or None."""
        return self._get_tracked(BATCH, BATCH_INDEX, key, BatchRecord)

    def list_batches(self) -> list[BatchRecord]:
        """Every batch record, newest first."""
        found = self._scan(BATCH, BatchRecord)
        found.sort(key=lambda rec: rec.created_at, reverse=True)
        return found

    def open_batches(self) -> list[BatchRecord]:
        """Batches not finished yet (no `finished_at`), oldest first."""
        with self._guard():
            local_ids = index.open_batches(self._cache)
        return [rec for local_id in local_ids if (rec := self._read(BATCH + local_id, BatchRecord))]


def _conforms(registry: Registry) -> RegistryStore:
    # mypy checks here that the embedded store meets the contract every store must meet.
    return registry
