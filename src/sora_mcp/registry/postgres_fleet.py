"""Idempotency keys on the PostgreSQL registry: a billable call's key → the records it made
(`idempotency_keys`, `idempotency_records`), so a retry of the call — from any process on any
host — finds them instead of sending again. Functions of a connection inside the transaction
that writes the intents (under the reservation's advisory lock, so a key is looked up and bound
in one step)."""

from __future__ import annotations

from collections.abc import Sequence

from sora_mcp.registry.postgres_rows import Conn, select_videos, video_from_row
from sora_mcp.registry.records import VideoRecord


def keyed(conn: Conn, key: str, key_since: float | None) -> tuple[VideoRecord, ...] | None:
    """The records of a used key, or None (unused, or used before `key_since`: forgotten)."""
    found = conn.execute("SELECT created_at FROM idempotency_keys WHERE key = %s", (key,)).fetchone()
    if found is None:
        return None
    if key_since is not None and float(found["created_at"]) < key_since:
        conn.execute("DELETE FROM idempotency_keys WHERE key = %s", (key,))
        return None
    rows = conn.execute(
        select_videos(
            "v.local_id IN (SELECT r.local_id FROM idempotency_records r WHERE r.key = %(key)s)"
            " ORDER BY (SELECT r.seq FROM idempotency_records r WHERE r.key = %(key)s AND r.local_id = v.local_id)"
        ),
        {"key": key},
    ).fetchall()
    return tuple(video_from_row(row) for row in rows)


def bind_key(conn: Conn, key: str, tool: str, recs: Sequence[VideoRecord], now: float) -> None:
    conn.execute("INSERT INTO idempotency_keys (key, tool, created_at) VALUES (%s, %s, %s)", (key, tool, now))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO idempotency_records (key, kind, local_id, seq) VALUES (%s, 'video', %s, %s)",
            [(key, rec.local_id, n) for n, rec in enumerate(recs)],
        )


def unbind_key(conn: Conn, local_id: str) -> None:
    """Forget a discarded intent in its key; a key left with no record goes too (a call that
    sent nothing may be tried again with the same key)."""
    rows = conn.execute(
        "DELETE FROM idempotency_records WHERE kind = 'video' AND local_id = %s RETURNING key", (local_id,)
    ).fetchall()
    for row in rows:
        conn.execute(
            "DELETE FROM idempotency_keys k WHERE k.key = %s"
            " AND NOT EXISTS (SELECT 1 FROM idempotency_records r WHERE r.key = k.key)",
            (row["key"],),
        )
