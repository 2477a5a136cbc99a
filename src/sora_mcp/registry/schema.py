"""The registry's schema: its key layout, its version, and the migrations between versions.

Keys (versions 3 and 4, see `keys`):
    "video:<local_id>"        a VideoRecord            "vid:<backend id>"  → its local_id
    "batch:<local_id>"        a BatchRecord            "bid:<backend id>"  → its local_id
    "char:<id>"               a CharacterRecord        "cname:<casefolded name>" → [ids] (v2)
    "meta:schema_version"     the version below        "meta:migrations"   → what was migrated, when
and, since v3, the query index tables beside diskcache's (see `index`).

A registry written by an older sora-mcp is migrated on open, one `migrate_vN_to_vN+1` step at a
time, inside the same write transaction that reads the version: a second process opening the
folder at the same moment waits for that lock and then finds the registry already current, so
each step runs exactly once. A failed step rolls everything back and leaves the folder as it was.
A registry from a newer sora-mcp is refused, never misread (its rows may hold fields this one
does not know), and so is one with records but no version at all.

Adding a version: bump SCHEMA_VERSION, write `migrate_vN_to_vN+1(cache)` and add it to
MIGRATIONS; a step only uses the cache it is given (it runs inside the transaction) and must
leave every record readable by the new code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import diskcache

from sora_mcp.errors import RegistryError
from sora_mcp.registry import index
from sora_mcp.registry.disk import loads, transaction
from sora_mcp.registry.keys import CHARACTER, MIGRATIONS_KEY, SCHEMA_KEY, name_key

SCHEMA_VERSION = 4


def migrate_v1_to_v2(cache: diskcache.Cache) -> None:
    """v2 indexes characters by name, so `get_character("Ava")` reads one row instead of them all.

    A v1 writer would not keep that index in step, which is why the version changes.
    """
    by_name: dict[str, list[str]] = {}
    for key in list(cache.iterkeys()):
        if not key.startswith(CHARACTER):
            continue
        raw = cache.get(key)
        if raw is None:
            continue
        row = loads(raw, key)
        name, char_id = row.get("name") if isinstance(row, dict) else None, key[len(CHARACTER) :]
        if not isinstance(name, str):
            raise RegistryError(f"registry row {key!r} has no character name; cannot migrate it")
        by_name.setdefault(name_key(name), []).append(char_id)
    for key, ids in by_name.items():
        cache.set(key, json.dumps(sorted(ids)))


def migrate_v2_to_v3(cache: diskcache.Cache) -> None:
    """v3 keeps a query index (SQLite tables beside the records, see `index`), written in the same
    transaction as every record; a v2 writer would leave it stale, hence the bump."""
    index.rebuild(cache)


def migrate_v3_to_v4(cache: diskcache.Cache) -> None:
    """v4 video records may carry `fallback` and `stitch_onto` (a video made by a fallback, e.g.
    an extension stitched locally), and character records a `reference` frame (a character made
    without a characters endpoint). Every v3 row is a valid v4 row, so nothing is rewritten; the
    version changes because a v3 reader would refuse a v4 row."""


# MIGRATIONS[n] turns a version-n registry into a version n+1 one.
MIGRATIONS: dict[int, Callable[[diskcache.Cache], None]] = {
    1: migrate_v1_to_v2,
    2: migrate_v2_to_v3,
    3: migrate_v3_to_v4,
}


def ensure_schema(cache: diskcache.Cache, directory: Path, now: Callable[[], float]) -> None:
    """Stamp a new registry, migrate an older one, or refuse one that cannot be read safely.

    Raises:
        RegistryError: the version is newer than SCHEMA_VERSION, unreadable, or has no migration
            path; the folder holds records but no version; or a migration step failed (then
            nothing was changed).
    """
    with transaction(cache, directory):
        raw = cache.get(SCHEMA_KEY)
        if raw is None:
            if next(cache.iterkeys(), None) is not None:
                raise RegistryError(
                    f"the registry in {directory} holds records but no schema version, so "
                    "they cannot be read safely; point sora-mcp at another registry folder "
                    "(SORA_MCP_HOME) and keep this one as it is."
                )
            cache.set(SCHEMA_KEY, json.dumps(SCHEMA_VERSION))
        else:
            version = _version(raw, directory)
            if version < SCHEMA_VERSION:
                _migrate(cache, directory, version, now)
        # Derived data: made when missing, rebuilt when it does not match the records.
        index.ensure(cache)


def _version(raw: str, directory: Path) -> int:
    version = loads(raw, SCHEMA_KEY)
    # bool is an int in Python and 1.0 == 1: only a true int is a version.
    if type(version) is not int:
        raise RegistryError(
            f"the registry in {directory} has an unreadable schema version {raw!r}; "
            "point sora-mcp at another registry folder (SORA_MCP_HOME)."
        )
    if version > SCHEMA_VERSION:
        raise RegistryError(
            f"the registry in {directory} was written with schema version {version}; "
            f"this sora-mcp understands versions up to {SCHEMA_VERSION}. Upgrade sora-mcp, "
            "or point it at another registry folder."
        )
    missing = [n for n in range(version, SCHEMA_VERSION) if n not in MIGRATIONS]
    if missing:
        raise RegistryError(
            f"the registry in {directory} was written by an older sora-mcp (schema version "
            f"{version}) that this one has no migration from; it refuses rather than misread the "
            "records. Keep using the sora-mcp that wrote it, or point this one at another registry "
            "folder (SORA_MCP_HOME); the old folder is left untouched."
        )
    return version


def _migrate(cache: diskcache.Cache, directory: Path, version: int, now: Callable[[], float]) -> None:
    """Run every step from `version` up, inside the caller's transaction."""
    history: list[Any] = loads(cache.get(MIGRATIONS_KEY) or "[]", MIGRATIONS_KEY)
    for step in range(version, SCHEMA_VERSION):
        try:
            MIGRATIONS[step](cache)
        except RegistryError as exc:
            raise RegistryError(
                f"the registry in {directory} could not be migrated from schema version {step} to "
                f"{step + 1} ({exc}); nothing was changed."
            ) from exc
        history.append({"from": step, "to": step + 1, "at": now()})
    cache.set(MIGRATIONS_KEY, json.dumps(history))
    cache.set(SCHEMA_KEY, json.dumps(SCHEMA_VERSION))
