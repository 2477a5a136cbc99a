"""The persistent registry: every video, character and batch sora-mcp has ever started.

It is the memory that makes "never pay twice, never lose a job" possible: an intent is written
before a billable request is sent, the backend id right after, and unfinished jobs are found
here after a crash. Several processes may share one registry folder on a local disk.

Storage is diskcache (SQLite) with three deliberate departures from its defaults:

- `eviction_policy="none"` and no expiry, because diskcache otherwise drops the least recently
  stored rows at 1 GiB, silently losing paid jobs. The persisted setting is checked on every open.
- JSON only: `JsonOnlyDisk` refuses to store anything but text and refuses to unpickle, since
  diskcache unpickles rows by default and anyone able to write the folder could run code
  (CVE-2025-69872). The folder is owner-only (0700) for the same reason.
- Read-modify-write happens inside `transact()` (an SQLite write lock), so concurrent processes
  never lose each other's updates.

Keys: "video:<local_id>", "vid:<backend id>" (→ local_id), "char:<id>", "batch:<local_id>",
"bid:<backend id>" (→ local_id), "meta:schema_version".
"""

from __future__ import annotations

import json
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import diskcache
from pydantic import BaseModel, ValidationError

from sora_mcp.errors import RegistryError
from sora_mcp.registry.records import UNFINISHED_STATUSES, BatchRecord, CharacterRecord, VideoRecord

SCHEMA_VERSION = 1

_SCHEMA_KEY = "meta:schema_version"
_VIDEO, _VIDEO_INDEX = "video:", "vid:"
_BATCH, _BATCH_INDEX = "batch:", "bid:"
_CHARACTER = "char:"

# With eviction_policy "none" the limit is never enforced; a huge value keeps it that way even if
# a future diskcache consulted it.
_SIZE_LIMIT = 2**62
# Values below this stay inside SQLite rows, so they commit or roll back with the transaction;
# larger ones would become side files written before the commit.
_MIN_FILE_SIZE = 2**24
# Seconds to wait for another process's write lock before giving up with a RegistryError.
_LOCK_TIMEOUT = 30.0

_Tracked = TypeVar("_Tracked", VideoRecord, BatchRecord)
_Model = TypeVar("_Model", bound=BaseModel)


class JsonOnlyDisk(diskcache.Disk):  # type: ignore[misc]  # diskcache ships no type hints
    """A diskcache `Disk` that only ever stores and returns `str` keys and `str` values.

    Pickle is never touched in either direction: pickled keys or values found in the database
    (written by some other program) raise `RegistryError` instead of being deserialised.
    """

    def put(self, key: object) -> tuple[Any, bool]:
        if type(key) is not str:
            raise RegistryError(f"registry keys must be str, got {type(key).__name__}")
        return super().put(key)  # type: ignore[no-any-return]

    def get(self, key: object, raw: bool) -> str:
        if not raw or type(key) is not str:
            raise RegistryError(
                "the registry holds a non-text (possibly pickled) key; refusing to read it. "
                "Only sora-mcp should write to the registry folder."
            )
        return key

    def store(self, value: object, read: bool, key: object = diskcache.UNKNOWN) -> tuple[Any, ...]:
        if read or type(value) is not str:
            raise RegistryError(f"registry values must be JSON text, got {type(value).__name__}")
        return super().store(value, read, key=key)  # type: ignore[no-any-return]

    def fetch(self, mode: int, filename: str | None, value: object, read: bool) -> str:
        if mode == diskcache.core.MODE_PICKLE:
            raise RegistryError(
                "the registry holds a pickled row; refusing to unpickle it because that can run "
                "arbitrary code. Only sora-mcp should write to the registry folder."
            )
        if read or mode not in (diskcache.core.MODE_RAW, diskcache.core.MODE_TEXT):
            raise RegistryError("the registry holds a binary row; only JSON text rows are read")
        result = super().fetch(mode, filename, value, read)
        if type(result) is not str:
            raise RegistryError(f"the registry holds a non-text row ({type(result).__name__})")
        return result


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
        """Open (creating if needed) the registry in `directory`, owner-only.

        `now` supplies `updated_at` timestamps (inject a FakeClock's `now` in tests).

        Raises:
            RegistryError: the folder cannot be made private, the database cannot be opened, its
                eviction policy cannot be forced to "none", or it was written with another schema
                version (older or newer: refused, never misread).
        """
        _make_private_directory(directory)
        try:
            cache = diskcache.Cache(
                str(directory),
                timeout=_LOCK_TIMEOUT,
                disk=JsonOnlyDisk,
                eviction_policy="none",
                size_limit=_SIZE_LIMIT,
                cull_limit=0,
                disk_min_file_size=_MIN_FILE_SIZE,
            )
        except (sqlite3.Error, OSError, diskcache.Timeout) as exc:
            raise RegistryError(f"cannot open the registry database in {directory}: {exc}") from exc
        registry = cls(cache, directory, now)
        try:
            registry._ensure_no_eviction()
            registry._ensure_schema()
        except BaseException:
            cache.close()
            raise
        return registry

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

    def _ensure_no_eviction(self) -> None:
        # The policy is persisted in the database and any program opening the folder may change
        # it; re-read the stored value rather than trusting the constructor argument.
        with self._guard():
            if self._cache.reset("eviction_policy") == "none":
                return
            self._cache.reset("eviction_policy", "none")
            if self._cache.reset("eviction_policy") != "none":
                raise RegistryError(
                    f"the registry in {self.directory} has an eviction policy other than 'none' "
                    "and it could not be changed; it would silently drop records. Use another folder."
                )

    def _ensure_schema(self) -> None:
        # Rows of another schema version would be misread, so any version but ours is refused
        # (no older version has a migration yet: 1 is the first), and the folder is left as is.
        with self._transaction():
            raw = self._cache.get(_SCHEMA_KEY)
            if raw is None:
                if next(self._cache.iterkeys(), None) is not None:
                    raise RegistryError(
                        f"the registry in {self.directory} holds records but no schema version, so "
                        "they cannot be read safely; point sora-mcp at another registry folder "
                        "(SORA_MCP_HOME) and keep this one as it is."
                    )
                self._cache.set(_SCHEMA_KEY, json.dumps(SCHEMA_VERSION))
                return
            version = _loads(raw, _SCHEMA_KEY)
            # bool is an int in Python and 1.0 == 1: only a true int is a version.
            if type(version) is not int:
                raise RegistryError(
                    f"the registry in {self.directory} has an unreadable schema version {raw!r}; "
                    "point sora-mcp at another registry folder (SORA_MCP_HOME)."
                )
            if version > SCHEMA_VERSION:
                raise RegistryError(
                    f"the registry in {self.directory} was written with schema version {version}; "
                    f"this sora-mcp understands version {SCHEMA_VERSION} only. Upgrade sora-mcp, "
                    "or point it at another registry folder."
                )
            if version < SCHEMA_VERSION:
                raise RegistryError(
                    f"the registry in {self.directory} was written by an older sora-mcp (schema "
                    f"version {version}); this one reads version {SCHEMA_VERSION} and has no migration "
                    "from it, so it refuses rather than misread the records. Keep using the sora-mcp "
                    "that wrote it, or point this one at another registry folder (SORA_MCP_HOME); the "
                    "old folder is left untouched."
                )

    # ---------------------------------------------------------------- videos

    def record_intent(self, rec: VideoRecord) -> VideoRecord:
        """Store a new video record before its request is sent.

        Raises:
            RegistryError: a record with the same local_id already exists.
        """
        with self._transaction():
            if _VIDEO + rec.local_id in self._cache:
                raise RegistryError(f"video record {rec.local_id!r} already exists")
            self._store(_VIDEO, _VIDEO_INDEX, rec, previous=None)
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
            rec = self._require(_VIDEO, local_id, VideoRecord)
            new = self._apply(rec, changes)
            self._store(_VIDEO, _VIDEO_INDEX, new, previous=rec)
        return new

    def discard_intent(self, local_id: str) -> None:
        """Forget an intent the backend definitely refused (no job, no charge).

        Raises:
            RegistryError: no such record, or it already has a backend id (never forget a job).
        """
        with self._transaction():
            rec = self._require(_VIDEO, local_id, VideoRecord)
            if rec.id is not None or rec.status != "submitting":
                raise RegistryError(
                    f"video record {local_id!r} is {rec.status} with id {rec.id!r}; not discarding it"
                )
            self._cache.delete(_VIDEO + local_id)

    def update_video(self, key: str, **changes: Any) -> VideoRecord:
        """Change fields of the record for `key` (local id or backend id) and bump `updated_at`.

        Raises:
            RegistryError: no such record, or the changes do not validate.
        """
        with self._transaction():
            rec = self._require_tracked(_VIDEO, _VIDEO_INDEX, key, VideoRecord)
            new = self._apply(rec, changes)
            self._store(_VIDEO, _VIDEO_INDEX, new, previous=rec)
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
            rec = self._require_tracked(_VIDEO, _VIDEO_INDEX, key, VideoRecord)
            result = fn(rec)
            if not isinstance(result, VideoRecord):
                raise RegistryError(f"mutate_video expects a VideoRecord back, got {type(result).__name__}")
            # Field values as they are, not model_dump(): `fn` may have used model_copy(update=...),
            # which skips validation, and dumping unvalidated values only warns.
            new = self._apply(rec, dict(result))
            self._store(_VIDEO, _VIDEO_INDEX, new, previous=rec)
        return new

    def get_video(self, key: str) -> VideoRecord | None:
        """The record whose backend id or local id is `key`, or None."""
        return self._get_tracked(_VIDEO, _VIDEO_INDEX, key, VideoRecord)

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

        found = [rec for rec in self._scan(_VIDEO, VideoRecord) if keep(rec)]
        found.sort(key=lambda rec: rec.created_at, reverse=True)
        return found[: max(0, limit)]

    def videos_since(self, since: float) -> list[VideoRecord]:
        """Every video record created at or after `since` (epoch seconds), in no order."""
        return [rec for rec in self._scan(_VIDEO, VideoRecord) if rec.created_at >= since]

    def unfinished_videos(self) -> list[VideoRecord]:
        """Records still submitting, queued, in progress or unknown, oldest first (resume order)."""
        found = [rec for rec in self._scan(_VIDEO, VideoRecord) if rec.status in UNFINISHED_STATUSES]
        found.sort(key=lambda rec: rec.created_at)
        return found

    # ---------------------------------------------------------------- characters

    def put_character(self, rec: CharacterRecord) -> CharacterRecord:
        """Store (or replace) a character record under its id."""
        with self._guard():
            self._cache.set(_CHARACTER + rec.id, rec.model_dump_json())
        return rec

    def get_character(self, key: str) -> CharacterRecord | None:
        """The character whose id is `key`, else the newest whose name is `key` (exact match
        first, then case-insensitive), else None."""
        found = self._read(_CHARACTER + key, CharacterRecord)
        if found is not None:
            return found
        characters = self.list_characters()
        for rec in characters:
            if rec.name == key:
                return rec
        folded = key.casefold()
        return next((rec for rec in characters if rec.name.casefold() == folded), None)

    def list_characters(self) -> list[CharacterRecord]:
        """Every character record, newest first."""
        found = self._scan(_CHARACTER, CharacterRecord)
        found.sort(key=lambda rec: rec.created_at, reverse=True)
        return found

    # ---------------------------------------------------------------- batches

    def put_batch(self, rec: BatchRecord) -> BatchRecord:
        """Store (or replace) a batch record and its backend-id index, atomically.

        Raises:
            RegistryError: its backend id already belongs to another batch.
        """
        with self._transaction():
            previous = self._read(_BATCH + rec.local_id, BatchRecord)
            self._store(_BATCH, _BATCH_INDEX, rec, previous=previous)
        return rec

    def update_batch(self, key: str, **changes: Any) -> BatchRecord:
        """Change fields of the batch for `key` (local id or backend id) and bump `updated_at`.

        Raises:
            RegistryError: no such batch, or the changes do not validate.
        """
        with self._transaction():
            rec = self._require_tracked(_BATCH, _BATCH_INDEX, key, BatchRecord)
            new = self._apply(rec, changes)
            self._store(_BATCH, _BATCH_INDEX, new, previous=rec)
        return new

    def get_batch(self, key: str) -> BatchRecord | None:
        """The batch whose backend id or local id is `key`, or None."""
        return self._get_tracked(_BATCH, _BATCH_INDEX, key, BatchRecord)

    def list_batches(self) -> list[BatchRecord]:
        """Every batch record, newest first."""
        found = self._scan(_BATCH, BatchRecord)
        found.sort(key=lambda rec: rec.created_at, reverse=True)
        return found

    # ---------------------------------------------------------------- storage helpers

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError, diskcache.Timeout) as exc:
            raise RegistryError(
                f"the registry in {self.directory} could not be read or written ({type(exc).__name__}: "
                f"{exc}); check the disk, or whether another process holds it locked."
            ) from exc

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._guard(), self._cache.transact():
            yield

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
        local_id = _loads(raw, index + backend_id)
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


def _loads(raw: str, key: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RegistryError(f"registry row {key!r} is not valid JSON") from exc


def _make_private_directory(directory: Path) -> None:
    """Create `directory` owner-only, or tighten it to 0700 if it is wider."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = stat.S_IMODE(directory.stat().st_mode)
        # mkdir's mode is filtered by the umask and an existing folder keeps its mode: check both.
        if mode & 0o077:
            directory.chmod(0o700)
    except OSError as exc:
        raise RegistryError(
            f"cannot create the registry folder {directory} with owner-only permissions: {exc}"
        ) from exc
    if not directory.is_dir():
        raise RegistryError(f"the registry path {directory} is not a folder")
