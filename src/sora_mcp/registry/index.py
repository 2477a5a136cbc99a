"""The registry's query index: SQLite tables beside diskcache's own, in the same database file.

diskcache stays the record store (one JSON row per record); these tables hold only what queries
filter and sort on (created time, status, model, batch, parent, characters, cost, the prompt and
note text under FTS5), so `list_videos`, children, unfinished jobs, open batches and today's
spend are indexed lookups instead of reading and validating every record.

Every write goes through diskcache's own connection (`cache._sql`), inside the `transact()` that
writes the record, so the record and its index row commit or roll back together. `_sql` is
diskcache's internal statement runner; its behaviour (one connection per thread, joined to the
open transaction) is pinned by the tests in test_registry_index.py.

The index is derived data: `ensure` rebuilds it from the records when it is missing or does not
match them (a row count per kind), under the write lock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import diskcache
from pydantic import ValidationError

from sora_mcp.errors import RegistryError
from sora_mcp.registry.keys import BATCH, VIDEO
from sora_mcp.registry.records import UNFINISHED_STATUSES, BatchRecord, VideoRecord

_TABLES = (
    # `seq` (the rowid) numbers rows in the order they were first written: ties in creation time
    # keep that order, as the scan over the records did. Every index ends in (created_at, seq), so
    # "newest first" reads an index in order and stops at the limit, with no sort.
    """CREATE TABLE IF NOT EXISTS sora_video (
        seq INTEGER PRIMARY KEY, local_id TEXT NOT NULL UNIQUE, backend_id TEXT,
        created_at REAL NOT NULL, status TEXT NOT NULL, model TEXT NOT NULL, batch_id TEXT,
        parent_id TEXT, cost REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS sora_video_created ON sora_video (created_at DESC, seq)",
    "CREATE INDEX IF NOT EXISTS sora_video_status ON sora_video (status, created_at DESC, seq)",
    "CREATE INDEX IF NOT EXISTS sora_video_model ON sora_video (model, created_at DESC, seq)",
    "CREATE INDEX IF NOT EXISTS sora_video_batch ON sora_video (batch_id, created_at DESC, seq)",
    "CREATE INDEX IF NOT EXISTS sora_video_parent ON sora_video (parent_id, created_at, seq)",
    """CREATE TABLE IF NOT EXISTS sora_video_character (
        character_id TEXT NOT NULL, local_id TEXT NOT NULL, PRIMARY KEY (character_id, local_id))""",
    "CREATE INDEX IF NOT EXISTS sora_video_character_video ON sora_video_character (local_id)",
    # trigram: substring matches in any case, as the Python filter did; rowid = sora_video.seq.
    "CREATE VIRTUAL TABLE IF NOT EXISTS sora_video_text USING fts5(prompt, note, tokenize='trigram')",
    """CREATE TABLE IF NOT EXISTS sora_batch (
        local_id TEXT PRIMARY KEY, created_at REAL NOT NULL, mode TEXT NOT NULL,
        finished_at REAL)""",
    "CREATE INDEX IF NOT EXISTS sora_batch_open ON sora_batch (finished_at, created_at)",
    # Rows that could not be indexed at the last rebuild (refused as unsafe or invalid): they
    # are still refused when read by id, and counted here so the index is not rebuilt forever.
    "CREATE TABLE IF NOT EXISTS sora_index_skipped (prefix TEXT PRIMARY KEY, count INTEGER NOT NULL)",
    # diskcache's own row count (kept by its triggers) when this index was last written: any
    # other count on open means a row came or went without the index.
    "CREATE TABLE IF NOT EXISTS sora_index_state (id INTEGER PRIMARY KEY CHECK (id = 1), cache_count INTEGER)",
)
log = logging.getLogger(__name__)
_DROP = (
    "sora_video",
    "sora_video_character",
    "sora_video_text",
    "sora_batch",
    "sora_index_skipped",
    "sora_index_state",
)
# FTS5 trigram matches need at least 3 characters; shorter needles are matched with instr().
_TRIGRAM = 3
# Above this many text matches, newest-first is read from the creation-time index (see find_videos).
_DENSE = 500


def _sql(cache: diskcache.Cache, statement: str, *args: Any) -> Any:
    return cache._sql(statement, *args)


def ensure(cache: diskcache.Cache) -> bool:
    """Create the index if needed and rebuild it if a table is missing or its rows do not match
    the records; call inside a transaction. Returns whether it was rebuilt.

    Cheap when nothing else wrote the folder (two one-row reads): the full row counts are only
    compared when diskcache's row count is not the one the index last saw.
    """
    names = {str(name) for (name,) in _sql(cache, "SELECT name FROM sqlite_master").fetchall()}
    if not names.issuperset(_DROP):
        rebuild(cache)
        return True
    seen = _sql(cache, "SELECT cache_count FROM sora_index_state WHERE id = 1").fetchall()
    if seen and seen[0][0] == _cache_count(cache):
        return False
    stored = (_count_keys(cache, VIDEO), _count_keys(cache, BATCH))
    indexed = (_indexed(cache, "sora_video", VIDEO), _indexed(cache, "sora_batch", BATCH))
    ((texts,),) = _sql(cache, "SELECT COUNT(*) FROM sora_video_text").fetchall()
    ((rows,),) = _sql(cache, "SELECT COUNT(*) FROM sora_video").fetchall()
    rebuilt = not (stored == indexed and texts == rows)
    if rebuilt:
        rebuild(cache)
    written(cache)
    return rebuilt


def written(cache: diskcache.Cache) -> None:
    """Note that the index is current with the records; end every write transaction with it."""
    _sql(
        cache,
        "INSERT INTO sora_index_state VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET cache_count = excluded.cache_count",
        (_cache_count(cache),),
    )


def _cache_count(cache: diskcache.Cache) -> int:
    ((count,),) = _sql(cache, "SELECT value FROM Settings WHERE key = 'count'").fetchall()
    return int(count)


def _indexed(cache: diskcache.Cache, table: str, prefix: str) -> int:
    ((rows,),) = _sql(cache, f"SELECT COUNT(*) FROM {table}").fetchall()  # noqa: S608  (fixed names)
    skipped = _sql(cache, "SELECT count FROM sora_index_skipped WHERE prefix = ?", (prefix,)).fetchall()
    return int(rows) + (int(skipped[0][0]) if skipped else 0)


def rebuild(cache: diskcache.Cache) -> None:
    """Drop and refill every index table from the records; call inside a transaction."""
    for table in _DROP:
        _sql(cache, f"DROP TABLE IF EXISTS {table}")
    for statement in _TABLES:
        _sql(cache, statement)
    for prefix in (VIDEO, BATCH):
        skipped = 0
        for key in keys_with_prefix(cache, prefix):
            try:
                raw = cache.get(key)
                if raw is not None and prefix == VIDEO:
                    put_video(cache, VideoRecord.model_validate_json(raw))
                elif raw is not None:
                    put_batch(cache, BatchRecord.model_validate_json(raw))
            except (RegistryError, ValidationError):
                log.warning("registry row %r cannot be read; it is left out of the index", key)
                skipped += 1
        _sql(cache, "INSERT INTO sora_index_skipped VALUES (?, ?)", (prefix, skipped))
    written(cache)


def _prefix_range(prefix: str) -> tuple[str, str]:
    # Every key starting with `prefix` sorts in [prefix, prefix with its last character bumped).
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _count_keys(cache: diskcache.Cache, prefix: str) -> int:
    low, high = _prefix_range(prefix)
    ((count,),) = _sql(cache, "SELECT COUNT(*) FROM Cache WHERE key >= ? AND key < ?", (low, high)).fetchall()
    return int(count)


def keys_with_prefix(cache: diskcache.Cache, prefix: str) -> list[str]:
    """Every key starting with `prefix`, from diskcache's key index (not a walk over all keys)."""
    low, high = _prefix_range(prefix)
    # In the order the rows were first written, so a rebuilt index keeps ties as they were.
    query = "SELECT key FROM Cache WHERE key >= ? AND key < ? AND raw = 1 ORDER BY rowid"
    rows = _sql(cache, query, (low, high))
    return [str(key) for (key,) in rows.fetchall()]


# ---------------------------------------------------------------- writes (inside a transaction)


def put_video(cache: diskcache.Cache, rec: VideoRecord) -> None:
    _sql(
        cache,
        """INSERT INTO sora_video (local_id, backend_id, created_at, status, model, batch_id, parent_id, cost)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (local_id) DO UPDATE SET backend_id = excluded.backend_id,
            created_at = excluded.created_at, status = excluded.status, model = excluded.model,
            batch_id = excluded.batch_id, parent_id = excluded.parent_id, cost = excluded.cost""",
        (
            rec.local_id,
            rec.id,
            rec.created_at,
            rec.status,
            rec.model,
            rec.batch_id,
            rec.parent_id,
            rec.estimated_cost_usd,
        ),
    )
    ((rowid,),) = _sql(cache, "SELECT seq FROM sora_video WHERE local_id = ?", (rec.local_id,)).fetchall()
    _sql(cache, "DELETE FROM sora_video_text WHERE rowid = ?", (rowid,))
    _sql(
        cache,
        "INSERT INTO sora_video_text (rowid, prompt, note) VALUES (?, ?, ?)",
        (rowid, rec.prompt, rec.note),
    )
    _sql(cache, "DELETE FROM sora_video_character WHERE local_id = ?", (rec.local_id,))
    for character_id in set(rec.character_ids):
        _sql(cache, "INSERT INTO sora_video_character VALUES (?, ?)", (character_id, rec.local_id))


def delete_video(cache: diskcache.Cache, local_id: str) -> None:
    rows = _sql(cache, "SELECT seq FROM sora_video WHERE local_id = ?", (local_id,)).fetchall()
    for (rowid,) in rows:
        _sql(cache, "DELETE FROM sora_video_text WHERE rowid = ?", (rowid,))
    _sql(cache, "DELETE FROM sora_video WHERE local_id = ?", (local_id,))
    _sql(cache, "DELETE FROM sora_video_character WHERE local_id = ?", (local_id,))


def put_batch(cache: diskcache.Cache, rec: BatchRecord) -> None:
    _sql(
        cache,
        """INSERT INTO sora_batch (local_id, created_at, mode, finished_at) VALUES (?, ?, ?, ?)
        ON CONFLICT (local_id) DO UPDATE SET created_at = excluded.created_at, mode = excluded.mode,
            finished_at = excluded.finished_at""",
        (rec.local_id, rec.created_at, rec.mode, rec.finished_at),
    )


# ---------------------------------------------------------------- queries


def find_videos(
    cache: diskcache.Cache,
    *,
    status: str | None = None,
    model: str | None = None,
    text: str | None = None,
    parent_ids: Sequence[str] = (),
    batch_id: str | None = None,
    character_id: str | None = None,
    statuses: Iterable[str] = (),
    since: float | None = None,
    oldest_first: bool = False,
    limit: int = -1,
) -> list[str]:
    """Local ids of the videos matching every given filter, newest first (or oldest first)."""
    where: list[str] = []
    args: list[Any] = []
    for column, value in (("status", status), ("model", model), ("batch_id", batch_id)):
        if value is not None:
            where.append(f"v.{column} = ?")
            args.append(value)
    if since is not None:
        where.append("v.created_at >= ?")
        args.append(since)
    wanted = sorted(statuses)
    if wanted:
        where.append(f"v.status IN ({', '.join('?' * len(wanted))})")
        args.extend(wanted)
    if parent_ids:
        where.append(f"v.parent_id IN ({', '.join('?' * len(parent_ids))})")
        args.extend(parent_ids)
    if character_id is not None:
        where.append("v.local_id IN (SELECT local_id FROM sora_video_character WHERE character_id = ?)")
        args.append(character_id)
    source = "sora_video v"
    if text is not None:
        where.append(_text_filter(text))
        args.append(_fts_phrase(text) if len(text) >= _TRIGRAM else text.casefold())
        if len(text) < _TRIGRAM:
            args.append(text.casefold())
        if not oldest_first and (len(text) < _TRIGRAM or _matches(cache, text) > _DENSE):
            # Many matches: reading newest first and keeping matches reaches the limit soon;
            # the planner would rather collect every match and sort them.
            source = "sora_video v INDEXED BY sora_video_created"
    order = "ASC" if oldest_first else "DESC"
    # Only fixed column names and "?" placeholders are joined in; every value is a parameter.
    statement = (
        f"SELECT v.local_id FROM {source}"  # noqa: S608
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" ORDER BY v.created_at {order}, v.seq ASC LIMIT ?"
    )
    rows = _sql(cache, statement, (*args, limit)).fetchall()
    return [str(local_id) for (local_id,) in rows]


def _matches(cache: diskcache.Cache, text: str) -> int:
    query = "SELECT COUNT(*) FROM sora_video_text WHERE sora_video_text MATCH ?"
    ((count,),) = _sql(cache, query, (_fts_phrase(text),)).fetchall()
    return int(count)


def _text_filter(text: str) -> str:
    if len(text) >= _TRIGRAM:
        return "v.seq IN (SELECT rowid FROM sora_video_text WHERE sora_video_text MATCH ?)"
    return (
        "EXISTS (SELECT 1 FROM sora_video_text t WHERE t.rowid = v.seq AND "
        "(instr(lower(t.prompt), ?) > 0 OR instr(lower(coalesce(t.note, '')), ?) > 0))"
    )


def _fts_phrase(text: str) -> str:
    # One FTS5 string: every character literal (a double quote is written twice).
    return '"' + text.replace('"', '""') + '"'


def spent_since(cache: diskcache.Cache, since: float) -> float:
    """Estimated USD of every video recorded at or after `since`."""
    ((total,),) = _sql(cache, "SELECT COALESCE(SUM(cost), 0) FROM sora_video WHERE created_at >= ?", (since,))
    return float(total)


def unfinished(cache: diskcache.Cache) -> list[str]:
    return find_videos(cache, statuses=UNFINISHED_STATUSES, oldest_first=True)


def open_batches(cache: diskcache.Cache) -> list[str]:
    """Local ids of batches not finished, oldest first."""
    rows = _sql(cache, "SELECT local_id FROM sora_batch WHERE finished_at IS NULL ORDER BY created_at, rowid")
    return [str(local_id) for (local_id,) in rows.fetchall()]
