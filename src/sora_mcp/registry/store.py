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

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import diskcache
from pydantic import BaseModel, ValidationError

from sora_mcp.errors import RegistryError
from sora_mcp.registry.disk import guarded, loads, open_cache, transaction
from sora_mcp.registry.interface import RegistryStore
from sora_mcp.registry.records import UNFINISHED_STATUSES, BatchRecord, CharacterRecord, VideoRecord
from sora_mcp.registry.schema import (
    BATCH,
    BATCH_INDEX,
    CHARACTER,
    SCHEMA_VERSION,
    VIDEO,
    VIDEO_INDEX,
    ensure_schema,
    name_key,
)

__all__ = ["SCHEMA_VERSION", "Registry"]

_Tracked = TypeVar("_Tracked", VideoRecord, BatchRecord)
_Model = TypeVar("_Model", bound=BaseModel)


class Registry:
    """Records of videos, characters and batches, persisted in a diskcache folder.

    Synchronous (diskcache is); async callers run methods in a worker thread. Thread-safe and
    process-safe on a local disk. Every write that spans several keys is one transaction.
    Records are looked up by local id or by backend id interchangeably.
    """

    def __init__(self, cache: diskcache.Cache, directory: Path, now: Callable[[], float]) -> None:
        """Use `Registry.open`; this only wires an already checked cache."""
        self._cache = cache
        self._now = now
        self.directory = directory

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
            if VIDEO + rec.local_id in self._cache:
                raise RegistryError(f"video record {rec.local_id!r} already exists")
            self._store(VIDEO, VIDEO_INDEX, rec, previous=None)
        return rec

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
        """Forget an intent the backend definitely refused (no job, no charge).

        Raises:
            RegistryError: no such record, or it already has a backend id (never forget a job).
        """
        with self._transaction():
            rec = self._require(VIDEO, local_id, VideoRecord)
            if rec.id is not None or rec.status != "submitting":
                raise RegistryError(
                    f"video record {local_id!r} is {rec.status} with id {rec.id!r}; not discarding it"
                )
            self._cache.delete(VIDEO + local_id)

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
        needle = text.casefold() if text is not None else None

        def keep(rec: VideoRecord) -> bool:
            return (
                (status is None or rec.status == status)
                and (model is None or rec.model == model)
                and (parent_id is None or rec.parent_id == parent_id)
                and (batch_id is None or rec.batch_id == batch_id)
                and (character_id is None or character_id in rec.character_ids)
                and (
                    needle is None
                    or needle in rec.prompt.casefold()
                    or (rec.note is not None and needle in rec.note.casefold())
                )
            )

        found = [rec for rec in self._scan(VIDEO, VideoRecord) if keep(rec)]
        found.sort(key=lambda rec: rec.created_at, reverse=True)
        return found[: max(0, limit)]

    def videos_since(self, since: float) -> list[VideoRecord]:
        """Every video record created at or after `since` (epoch seconds), in no order."""
        return [rec for rec in self._scan(VIDEO, VideoRecord) if rec.created_at >= since]

    def unfinished_videos(self) -> list[VideoRecord]:
        """Records still submitting, queued, in progress or unknown, oldest first (resume order)."""
        found = [rec for rec in self._scan(VIDEO, VideoRecord) if rec.status in UNFINISHED_STATUSES]
        found.sort(key=lambda rec: rec.created_at)
        return found

    # ---------------------------------------------------------------- characters

    def put_character(self, rec: CharacterRecord) -> CharacterRecord:
        """Store (or replace) a character record under its id, with its name index, atomically."""
        with self._transaction():
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

    def _named(self, name: str) -> set[str]:
        """Ids of the characters whose name folds to the same text as `name`."""
        with self._guard():
            raw = self._cache.get(name_key(name))
        ids = loads(raw, name_key(name)) if raw is not None else []
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise RegistryError(f"registry index row {name_key(name)!r} is not a list of character ids")
        return set(ids)

    def _set_named(self, name: str, ids: set[str]) -> None:
        """Call inside `_transaction()`."""
        if ids:
            self._cache.set(name_key(name), json.dumps(sorted(ids)))
        else:
            self._cache.delete(name_key(name))

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

    # ---------------------------------------------------------------- storage helpers

    def _guard(self) -> AbstractContextManager[None]:
        return guarded(self.directory)

    def _transaction(self) -> AbstractContextManager[None]:
        return transaction(self._cache, self.directory)

    def _read(self, key: str, model: type[_Model]) -> _Model | None:
        with self._guard():
            raw = self._cache.get(key)
        if raw is None:
            return None
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            raise RegistryError(f"registry row {key!r} is not a valid {model.__name__}: {exc}") from exc

    def _scan(self, prefix: str, model: type[_Model]) -> list[_Model]:
        with self._guard():
            keys = [key for key in self._cache.iterkeys() if key.startswith(prefix)]
        # A row deleted between listing and reading is simply gone.
        return [rec for key in keys if (rec := self._read(key, model)) is not None]

    def _indexed(self, index: str, backend_id: str) -> str | None:
        """The local id the index maps `backend_id` to, or None."""
        with self._guard():
            raw = self._cache.get(index + backend_id)
        if raw is None:
            return None
        local_id = loads(raw, index + backend_id)
        if not isinstance(local_id, str):
            raise RegistryError(f"registry index row {index + backend_id!r} is not a local id")
        return local_id

    def _local_id_for(self, prefix: str, index: str, key: str) -> str | None:
        local_id = self._indexed(index, key)
        if local_id is not None:
            return local_id
        with self._guard():
            return key if prefix + key in self._cache else None

    def _get_tracked(self, prefix: str, index: str, key: str, model: type[_Tracked]) -> _Tracked | None:
        local_id = self._local_id_for(prefix, index, key)
        return None if local_id is None else self._read(prefix + local_id, model)

    def _require(self, prefix: str, local_id: str, model: type[_Tracked]) -> _Tracked:
        rec = self._read(prefix + local_id, model)
        if rec is None:
            raise RegistryError(f"no {prefix.rstrip(':')} record with local id {local_id!r}")
        return rec

    def _require_tracked(self, prefix: str, index: str, key: str, model: type[_Tracked]) -> _Tracked:
        rec = self._get_tracked(prefix, index, key, model)
        if rec is None:
            raise RegistryError(f"no {prefix.rstrip(':')} record with id or local id {key!r}")
        return rec

    def _apply(self, rec: _Tracked, changes: dict[str, Any]) -> _Tracked:
        if changes.get("local_id", rec.local_id) != rec.local_id:
            raise RegistryError("a record's local_id never changes")
        data = rec.model_dump()
        data.update(changes)
        if data["updated_at"] == rec.updated_at:
            data["updated_at"] = self._now()
        try:
            return type(rec).model_validate(data)
        except ValidationError as exc:
            raise RegistryError(f"invalid change to {type(rec).__name__} {rec.local_id!r}: {exc}") from exc

    def _store(self, prefix: str, index: str, rec: _Tracked, *, previous: _Tracked | None) -> None:
        """Write `rec` and keep its backend-id index in step. Call inside `_transaction()`."""
        old_id = previous.id if previous is not None else None
        if rec.id is not None and rec.id != old_id:
            owner = self._indexed(index, rec.id)
            if owner is not None and owner != rec.local_id:
                raise RegistryError(
                    f"backend id {rec.id!r} is already recorded for local id {owner!r}; "
                    "not recording it twice"
                )
            self._cache.set(index + rec.id, json.dumps(rec.local_id))
        if old_id is not None and old_id != rec.id:
            self._cache.delete(index + old_id)
        self._cache.set(prefix + rec.local_id, rec.model_dump_json())


def _conforms(registry: Registry) -> RegistryStore:
    # mypy checks here that the embedded store meets the contract every store must meet.
    return registry
