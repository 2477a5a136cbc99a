"""Typed row access under the registry: read, validate, write a record with its backend-id and
query-index rows, in the caller's transaction. `Registry` builds its public API on this."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import diskcache
from pydantic import BaseModel, ValidationError

from sora_mcp.errors import RegistryError
from sora_mcp.registry import index
from sora_mcp.registry.disk import guarded, loads, transaction
from sora_mcp.registry.keys import name_key
from sora_mcp.registry.records import BatchRecord, VideoRecord, changed

_Tracked = TypeVar("_Tracked", VideoRecord, BatchRecord)
_Model = TypeVar("_Model", bound=BaseModel)


class Rows:
    """The diskcache rows of one registry folder."""

    def __init__(self, cache: diskcache.Cache, directory: Path, now: Callable[[], float]) -> None:
        """Use `Registry.open`; this only wires an already checked cache."""
        self._cache = cache
        self._now = now
        self.directory = directory

    # ---------------------------------------------------------------- storage helpers

    def _guard(self) -> AbstractContextManager[None]:
        return guarded(self.directory)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with transaction(self._cache, self.directory):
            yield
            index.written(self._cache)

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
            keys = index.keys_with_prefix(self._cache, prefix)
        # A row deleted between listing and reading is simply gone.
        return [rec for key in keys if (rec := self._read(key, model)) is not None]

    def _indexed(self, by_id: str, backend_id: str) -> str | None:
        """The local id the index maps `backend_id` to, or None."""
        with self._guard():
            raw = self._cache.get(by_id + backend_id)
        if raw is None:
            return None
        local_id = loads(raw, by_id + backend_id)
        if not isinstance(local_id, str):
            raise RegistryError(f"registry index row {by_id + backend_id!r} is not a local id")
        return local_id

    def _local_id_for(self, prefix: str, by_id: str, key: str) -> str | None:
        local_id = self._indexed(by_id, key)
        if local_id is not None:
            return local_id
        with self._guard():
            return key if prefix + key in self._cache else None

    def _get_tracked(self, prefix: str, by_id: str, key: str, model: type[_Tracked]) -> _Tracked | None:
        local_id = self._local_id_for(prefix, by_id, key)
        return None if local_id is None else self._read(prefix + local_id, model)

    def _require(self, prefix: str, local_id: str, model: type[_Tracked]) -> _Tracked:
        rec = self._read(prefix + local_id, model)
        if rec is None:
            raise RegistryError(f"no {prefix.rstrip(':')} record with local id {local_id!r}")
        return rec

    def _require_tracked(self, prefix: str, by_id: str, key: str, model: type[_Tracked]) -> _Tracked:
        rec = self._get_tracked(prefix, by_id, key, model)
        if rec is None:
            raise RegistryError(f"no {prefix.rstrip(':')} record with id or local id {key!r}")
        return rec

    def _apply(self, rec: _Tracked, changes: dict[str, Any]) -> _Tracked:
        return changed(rec, changes, now=self._now())

    def _store(self, prefix: str, by_id: str, rec: _Tracked, *, previous: _Tracked | None) -> None:
        """Write `rec` and keep its backend-id index in step. Call inside `_transaction()`."""
        old_id = previous.id if previous is not None else None
        if rec.id is not None and rec.id != old_id:
            owner = self._indexed(by_id, rec.id)
            if owner is not None and owner != rec.local_id:
                raise RegistryError(
                    f"backend id {rec.id!r} is already recorded for local id {owner!r}; "
                    "not recording it twice"
                )
            self._cache.set(by_id + rec.id, json.dumps(rec.local_id))
        if old_id is not None and old_id != rec.id:
            self._cache.delete(by_id + old_id)
        self._cache.set(prefix + rec.local_id, rec.model_dump_json())
        if isinstance(rec, VideoRecord):
            index.put_video(self._cache, rec)
        else:
            index.put_batch(self._cache, rec)

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
