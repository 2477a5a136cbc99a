"""The registry's on-disk safety: a JSON-only diskcache folder, owner-only, that never evicts.

diskcache (SQLite) is used with three deliberate departures from its defaults:

- `eviction_policy="none"` and no expiry, because diskcache otherwise drops the least recently
  stored rows at 1 GiB, silently losing paid jobs. The persisted setting is checked on every open.
- JSON only: `JsonOnlyDisk` refuses to store anything but text and refuses to unpickle, since
  diskcache unpickles rows by default and anyone able to write the folder could run code
  (CVE-2025-69872). The folder is owner-only (0700) for the same reason.
- Values stay inside SQLite rows (never side files), so every write commits or rolls back with
  its transaction.
"""

from __future__ import annotations

import json
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import diskcache

from sora_mcp.errors import RegistryError

# With eviction_policy "none" the limit is never enforced; a huge value keeps it that way even if
# a future diskcache consulted it.
_SIZE_LIMIT = 2**62
# Values below this stay inside SQLite rows, so they commit or roll back with the transaction;
# larger ones would become side files written before the commit.
_MIN_FILE_SIZE = 2**24
# Seconds to wait for another process's write lock before giving up with a RegistryError.
LOCK_TIMEOUT = 30.0


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


def open_cache(directory: Path) -> diskcache.Cache:
    """The diskcache in `directory` (created owner-only), JSON-only, with eviction forced off.

    Raises:
        RegistryError: the folder cannot be made private, the database cannot be opened, or its
            eviction policy cannot be forced to "none".
    """
    make_private_directory(directory)
    try:
        cache = diskcache.Cache(
            str(directory),
            timeout=LOCK_TIMEOUT,
            disk=JsonOnlyDisk,
            eviction_policy="none",
            size_limit=_SIZE_LIMIT,
            cull_limit=0,
            disk_min_file_size=_MIN_FILE_SIZE,
        )
    except (sqlite3.Error, OSError, diskcache.Timeout) as exc:
        raise RegistryError(f"cannot open the registry database in {directory}: {exc}") from exc
    try:
        _ensure_no_eviction(cache, directory)
    except BaseException:
        cache.close()
        raise
    return cache


def _ensure_no_eviction(cache: diskcache.Cache, directory: Path) -> None:
    # The policy is persisted in the database and any program opening the folder may change
    # it; re-read the stored value rather than trusting the constructor argument.
    with guarded(directory):
        if cache.reset("eviction_policy") == "none":
            return
        cache.reset("eviction_policy", "none")
        if cache.reset("eviction_policy") != "none":
            raise RegistryError(
                f"the registry in {directory} has an eviction policy other than 'none' "
                "and it could not be changed; it would silently drop records. Use another folder."
            )


@contextmanager
def guarded(directory: Path) -> Iterator[None]:
    """Turn storage failures (SQLite, disk, lock timeout) into one RegistryError that says what to check."""
    try:
        yield
    except (sqlite3.Error, OSError, diskcache.Timeout) as exc:
        raise RegistryError(
            f"the registry in {directory} could not be read or written ({type(exc).__name__}: "
            f"{exc}); check the disk, or whether another process holds it locked."
        ) from exc


@contextmanager
def transaction(cache: diskcache.Cache, directory: Path) -> Iterator[None]:
    """One SQLite write transaction (BEGIN IMMEDIATE: other processes wait for it), guarded."""
    with guarded(directory), cache.transact():
        yield


def loads(raw: str, key: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RegistryError(f"registry row {key!r} is not valid JSON") from exc


def make_private_directory(directory: Path) -> None:
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
