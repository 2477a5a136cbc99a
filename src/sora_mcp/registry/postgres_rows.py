"""Records ↔ rows of the PostgreSQL registry: which columns hold which field, and the queries
that read a whole record (its row plus its rows in the side tables) in one statement."""

from __future__ import annotations

from typing import Any, TypeVar

import psycopg
from psycopg import sql
from pydantic import BaseModel, ValidationError

from sora_mcp.errors import RegistryError
from sora_mcp.registry.records import BatchRecord, CharacterRecord, VideoRecord

_Model = TypeVar("_Model", bound=BaseModel)
Conn = psycopg.Connection[dict[str, Any]]

# Fields with a column of their own; `files` and `items` live in side tables.
VIDEO_COLUMNS: tuple[str, ...] = tuple(f for f in VideoRecord.model_fields if f != "files")
BATCH_COLUMNS: tuple[str, ...] = tuple(f for f in BatchRecord.model_fields if f != "items")
CHARACTER_COLUMNS: tuple[str, ...] = tuple(CharacterRecord.model_fields)

_FILES = (
    "ARRAY(SELECT f.variant FROM video_files f WHERE f.local_id = v.local_id ORDER BY f.seq) AS file_variants, "
    "ARRAY(SELECT f.path FROM video_files f WHERE f.local_id = v.local_id ORDER BY f.seq) AS file_paths"
)
_ITEMS = (
    "ARRAY(SELECT i.custom_id FROM batch_items i WHERE i.batch_local_id = b.local_id ORDER BY i.seq) AS item_keys, "
    "ARRAY(SELECT i.local_id FROM batch_items i WHERE i.batch_local_id = b.local_id ORDER BY i.seq) AS item_ids"
)


def _columns(prefix: str, names: tuple[str, ...]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(prefix, name) for name in names)


def select_videos(where: str) -> sql.Composed:
    """SELECT every video column and its files FROM videos v WHERE `where` (a constant)."""
    return sql.SQL("SELECT {cols}, {files} FROM videos v WHERE {where}").format(
        cols=_columns("v", VIDEO_COLUMNS), files=sql.SQL(_FILES), where=sql.SQL(where)
    )


def select_batches(where: str) -> sql.Composed:
    return sql.SQL("SELECT {cols}, {items} FROM batches b WHERE {where}").format(
        cols=_columns("b", BATCH_COLUMNS), items=sql.SQL(_ITEMS), where=sql.SQL(where)
    )


def select_characters(where: str) -> sql.Composed:
    return sql.SQL("SELECT {cols} FROM characters c WHERE {where}").format(
        cols=_columns("c", CHARACTER_COLUMNS), where=sql.SQL(where)
    )


def _validate(model: type[_Model], data: dict[str, Any], key: str) -> _Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RegistryError(f"registry row {key!r} is not a valid {model.__name__}: {exc}") from exc


def video_from_row(row: dict[str, Any]) -> VideoRecord:
    data = {name: row[name] for name in VIDEO_COLUMNS}
    data["files"] = dict(zip(row["file_variants"], row["file_paths"], strict=True))
    return _validate(VideoRecord, data, str(row["local_id"]))


def batch_from_row(row: dict[str, Any]) -> BatchRecord:
    data = {name: row[name] for name in BATCH_COLUMNS}
    data["items"] = dict(zip(row["item_keys"], row["item_ids"], strict=True))
    return _validate(BatchRecord, data, str(row["local_id"]))


def character_from_row(row: dict[str, Any]) -> CharacterRecord:
    return _validate(CharacterRecord, dict(row), str(row["id"]))


def _upsert(table: str, names: tuple[str, ...], key: str) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {table} ({cols}) VALUES ({values}) ON CONFLICT ({key}) DO UPDATE SET {updates}"
    ).format(
        table=sql.Identifier(table),
        cols=sql.SQL(", ").join(map(sql.Identifier, names)),
        values=sql.SQL(", ").join(sql.Placeholder(n) for n in names),
        key=sql.Identifier(key),
        updates=sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n)) for n in names if n != key
        ),
    )


def _insert(table: str, names: tuple[str, ...]) -> sql.Composed:
    return sql.SQL("INSERT INTO {table} ({cols}) VALUES ({values})").format(
        table=sql.Identifier(table),
        cols=sql.SQL(", ").join(map(sql.Identifier, names)),
        values=sql.SQL(", ").join(sql.Placeholder(n) for n in names),
    )


INSERT_VIDEO = _insert("videos", VIDEO_COLUMNS)
UPSERT_VIDEO = _upsert("videos", VIDEO_COLUMNS, "local_id")
UPSERT_BATCH = _upsert("batches", BATCH_COLUMNS, "local_id")
UPSERT_CHARACTER = _upsert("characters", (*CHARACTER_COLUMNS, "name_folded"), "id")


def write_video(conn: Conn, rec: VideoRecord, *, previous: VideoRecord | None) -> None:
    """Insert or replace `rec`'s row and, when they changed, its files. Inside a transaction."""
    values = {name: getattr(rec, name) for name in VIDEO_COLUMNS}
    conn.execute(INSERT_VIDEO if previous is None else UPSERT_VIDEO, values)
    if previous is not None and previous.files == rec.files:
        return
    if previous is not None:
        conn.execute("DELETE FROM video_files WHERE local_id = %s", (rec.local_id,))
    if rec.files:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO video_files (local_id, variant, path, seq) VALUES (%s, %s, %s, %s)",
                [(rec.local_id, k, v, n) for n, (k, v) in enumerate(rec.files.items())],
            )


def write_batch(conn: Conn, rec: BatchRecord, *, previous: BatchRecord | None) -> None:
    values = {name: getattr(rec, name) for name in BATCH_COLUMNS}
    conn.execute(UPSERT_BATCH, values)
    if previous is not None and previous.items == rec.items and list(previous.items) == list(rec.items):
        return
    conn.execute("DELETE FROM batch_items WHERE batch_local_id = %s", (rec.local_id,))
    if rec.items:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO batch_items (batch_local_id, custom_id, local_id, seq) VALUES (%s, %s, %s, %s)",
                [(rec.local_id, k, v, n) for n, (k, v) in enumerate(rec.items.items())],
            )


def write_character(conn: Conn, rec: CharacterRecord) -> None:
    values: dict[str, Any] = {name: getattr(rec, name) for name in CHARACTER_COLUMNS}
    values["name_folded"] = rec.name.casefold()
    conn.execute(UPSERT_CHARACTER, values)
