"""What the PostgreSQL registry adds for a fleet of processes sharing it beyond the records:
idempotency keys (`idempotency_keys`, `idempotency_records`: a billable call's key → the records
it made, looked up and bound inside the reservation's transaction and advisory lock) and the
shared queue of direct-batch items (`queue.py`; `PostgresRegistry` gets it from `PostgresQueue`).

Claims take a per-backend advisory lock, so counting the items in flight and claiming the next
one is one step fleet-wide; the row itself is taken `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager

from sora_mcp.registry.postgres_rows import Conn, select_videos, video_from_row
from sora_mcp.registry.queue import INTERRUPTED_NOTE, fair_share
from sora_mcp.registry.records import VideoRecord

_CLAIM_LOCK_CLASS = 0x43_4C_41_49  # "CLAI"; with a 32-bit hash of the backend, one lock per backend
_CLAIMABLE = (
    "v.status = 'pending' AND v.backend = %(backend)s AND v.batch_id IS NOT NULL"
    " AND NOT (v.local_id = ANY(%(skip)s))"
    " AND EXISTS (SELECT 1 FROM batches b WHERE b.local_id = v.batch_id AND b.mode = 'direct'"
    "             AND b.finished_at IS NULL)"
    " ORDER BY v.created_at, v.queue_seq LIMIT 1 FOR UPDATE OF v SKIP LOCKED"
)


class PostgresQueue:
    """The shared batch queue (`queue.py`) on the registry's connection pool."""

    _now: Callable[[], float]

    def transaction(self) -> AbstractContextManager[Conn]:
        raise NotImplementedError  # PostgresRegistry.transaction

    def claim_batch_item(
        self,
        *,
        backend: str,
        owner: str,
        lease_now: float,
        lease_seconds: float,
        concurrency: int,
        skip: Collection[str] = (),
    ) -> VideoRecord | None:
        """See `queue.py`."""
        with self.transaction() as conn:
            backend_hash = zlib.crc32(backend.encode()) - 2**31  # a signed 32-bit int
            conn.execute("SELECT pg_advisory_xact_lock(%s::int, %s::int)", (_CLAIM_LOCK_CLASS, backend_hash))
            workers = _seen_worker(conn, backend, owner, lease_now, lease_seconds)
            if _paused_until(conn, backend) > self._now():
                return None
            busy = conn.execute(
                "SELECT count(*) AS n, count(*) FILTER (WHERE lease_owner = %s) AS mine FROM videos"
                " WHERE backend = %s AND lease_owner IS NOT NULL AND lease_until > %s",
                (owner, backend, lease_now),
            ).fetchone()
            assert busy is not None  # an aggregate always answers one row
            if int(busy["n"]) >= concurrency or int(busy["mine"]) >= fair_share(concurrency, workers):
                return None
            row = conn.execute(select_videos(_CLAIMABLE), {"backend": backend, "skip": list(skip)}).fetchone()
            if row is None:
                return None
            now = self._now()
            conn.execute(
                "UPDATE videos SET status = 'submitting', updated_at = %s, lease_owner = %s, lease_until = %s"
                " WHERE local_id = %s",
                (now, owner, lease_now + lease_seconds, row["local_id"]),
            )
        return video_from_row(row).model_copy(update={"status": "submitting", "updated_at": now})

    def renew_leases(self, owner: str, until: float) -> int:
        """See `queue.py`."""
        with self.transaction() as conn:
            cur = conn.execute("UPDATE videos SET lease_until = %s WHERE lease_owner = %s", (until, owner))
            return cur.rowcount

    def release_lease(self, local_id: str, owner: str) -> None:
        """See `queue.py`."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE videos SET lease_owner = NULL, lease_until = NULL"
                " WHERE local_id = %s AND lease_owner = %s",
                (local_id, owner),
            )

    def expire_leases(self, *, lease_now: float, stale_before: float) -> list[str]:
        """See `queue.py`; returns the local ids that became 'unknown'."""
        with self.transaction() as conn:
            rows = conn.execute(
                "UPDATE videos SET status = 'unknown', note = %(note)s, updated_at = %(now)s,"
                " lease_owner = NULL, lease_until = NULL"
                " WHERE status = 'submitting' AND id IS NULL AND batch_id IS NOT NULL"
                " AND ((lease_owner IS NOT NULL AND lease_until <= %(lease_now)s)"
                "      OR (lease_owner IS NULL AND updated_at < %(stale_before)s))"
                " RETURNING local_id",
                {
                    "note": INTERRUPTED_NOTE,
                    "now": self._now(),
                    "lease_now": lease_now,
                    "stale_before": stale_before,
                },
            ).fetchall()
            # A lapsed lease on an item whose outcome was recorded holds nothing any more.
            conn.execute(
                "UPDATE videos SET lease_owner = NULL, lease_until = NULL"
                " WHERE lease_owner IS NOT NULL AND lease_until <= %s",
                (lease_now,),
            )
        return [str(row["local_id"]) for row in rows]

    def pause_backend(self, backend: str, not_before: float) -> None:
        """See `queue.py`: the later of the stored pause and `not_before` holds."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO backend_pauses (backend, not_before) VALUES (%s, %s) ON CONFLICT (backend)"
                " DO UPDATE SET not_before = greatest(backend_pauses.not_before, EXCLUDED.not_before)",
                (backend, not_before),
            )

    def paused_until(self, backend: str) -> float:
        """See `queue.py`; 0 when no pause was ever recorded."""
        with self.transaction() as conn:
            return _paused_until(conn, backend)


_CLAIM_WORK = (
    "INSERT INTO work_claims (key, owner, until) VALUES (%(key)s, %(owner)s, %(until)s)"
    " ON CONFLICT (key) DO UPDATE SET owner = EXCLUDED.owner, until = EXCLUDED.until"
    " WHERE work_claims.owner = EXCLUDED.owner OR work_claims.until <= %(now)s"
    " RETURNING key"
)


class PostgresClaims:
    """Claims on background work (`queue.py`): one statement each, the row's lock deciding."""

    def transaction(self) -> AbstractContextManager[Conn]:
        raise NotImplementedError  # PostgresRegistry.transaction

    def claim_work(self, key: str, *, owner: str, lease_now: float, lease_seconds: float) -> bool:
        """See `queue.py`."""
        params = {"key": key, "owner": owner, "until": lease_now + lease_seconds, "now": lease_now}
        with self.transaction() as conn:
            return conn.execute(_CLAIM_WORK, params).fetchone() is not None

    def renew_work(self, owner: str, until: float) -> int:
        """See `queue.py`."""
        with self.transaction() as conn:
            return conn.execute("UPDATE work_claims SET until = %s WHERE owner = %s", (until, owner)).rowcount

    def release_work(self, key: str, owner: str) -> None:
        """See `queue.py`."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM work_claims WHERE key = %s AND owner = %s", (key, owner))


def _seen_worker(conn: Conn, backend: str, owner: str, lease_now: float, lease_seconds: float) -> int:
    """Count `owner` among `backend`'s workers until its next call is due; how many are live."""
    conn.execute(
        "INSERT INTO queue_workers (backend, owner, seen_until) VALUES (%s, %s, %s)"
        " ON CONFLICT (backend, owner) DO UPDATE SET seen_until = EXCLUDED.seen_until",
        (backend, owner, lease_now + lease_seconds),
    )
    conn.execute("DELETE FROM queue_workers WHERE backend = %s AND seen_until <= %s", (backend, lease_now))
    row = conn.execute("SELECT count(*) AS n FROM queue_workers WHERE backend = %s", (backend,)).fetchone()
    return int(row["n"]) if row else 1


def _paused_until(conn: Conn, backend: str) -> float:
    row = conn.execute("SELECT not_before FROM backend_pauses WHERE backend = %s", (backend,)).fetchone()
    return float(row["not_before"]) if row else 0.0


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
