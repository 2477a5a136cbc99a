"""The registry in PostgreSQL: one database shared by every sora-mcp process on every host.

Chosen with `SORA_MCP_REGISTRY_URL=postgresql://…`. It keeps the same promises as the embedded
store (see `interface.py`) with the database doing the guarding: a backend id is UNIQUE, a
read-modify-write holds the row lock (`SELECT … FOR UPDATE`) for its transaction, and every
write that spans rows is one transaction.

Synchronous on purpose, like the interface it implements: callers are async, but every query
here is a short indexed statement on one or a few rows, so a pooled blocking connection costs
less than turning every call site of the registry into an `await` (and the embedded store is
synchronous anyway). The pool (psycopg_pool) lets the threads and tasks of one process share a
few connections; every connection is in autocommit except inside `transaction()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self, TypeVar

import psycopg
import psycopg_pool
from psycopg.rows import dict_row

from sora_mcp.config import redacted_url
from sora_mcp.errors import RegistryError
from sora_mcp.registry.interface import RegistryStore, Reservation, SpendLimit
from sora_mcp.registry.postgres_calls import PostgresCalls, answer_character_key
from sora_mcp.registry.postgres_fleet import PostgresClaims, PostgresQueue, bind_key, keyed, unbind_key
from sora_mcp.registry.postgres_rows import (
    Conn,
    batch_from_row,
    character_from_row,
    select_batches,
    select_characters,
    select_videos,
    video_from_row,
    write_batch,
    write_character,
    write_video,
)
from sora_mcp.registry.postgres_schema import describe_version, ensure_schema, read_version
from sora_mcp.registry.records import UNFINISHED_STATUSES, BatchRecord, CharacterRecord, VideoRecord, changed

POOL_SIZE = 10
_CONNECT_TIMEOUT = 15.0
# A key matches the backend id first, then the local id (the two never collide in practice; the
# backend id wins, as in the embedded store).
# Serialises reservations: the spend read and the intents written are one step fleet-wide.
_SPEND_LOCK = 0x53_50_45_4E_44  # "SPEND"
_Tracked = TypeVar("_Tracked", VideoRecord, BatchRecord)
_BY_KEY = "(v.id = %(key)s OR v.local_id = %(key)s) ORDER BY (v.id = %(key)s) DESC NULLS LAST LIMIT 1"
_BATCH_BY_KEY = "(b.id = %(key)s OR b.local_id = %(key)s) ORDER BY (b.id = %(key)s) DESC NULLS LAST LIMIT 1"


def _spent_since(conn: Conn, since: float) -> float:
    row = conn.execute(
        "SELECT coalesce(sum(estimated_cost_usd), 0) AS spent FROM videos WHERE created_at >= %s", (since,)
    ).fetchone()
    return float(row["spent"]) if row else 0.0


def probe(url: str, *, timeout: float = 5.0) -> tuple[bool, str]:
    """Whether the database at `url` can be opened as a registry, and what opening it would do —
    on one connection in a read-only transaction, so nothing is created or migrated."""
    try:
        with psycopg.connect(url, connect_timeout=max(1, round(timeout)), row_factory=dict_row) as conn:
            conn.read_only = True
            with conn.transaction():
                return describe_version(read_version(conn))
    except psycopg.Error as exc:
        return False, f"cannot reach it: {type(exc).__name__}: {exc}".strip()


class PostgresRegistry(PostgresQueue, PostgresClaims, PostgresCalls):
    """Records of videos, characters and batches in a PostgreSQL database (see module doc)."""

    def __init__(self, pool: psycopg_pool.ConnectionPool[Conn], url: str, now: Callable[[], float]) -> None:
        """Use `PostgresRegistry.open`; this only wires an already checked pool."""
        self._pool = pool
        self._now = now
        self.url = redacted_url(url)

    # ---------------------------------------------------------------- lifecycle

    @classmethod
    def open(
        cls, url: str, *, now: Callable[[], float] = time.time, pool_size: int = POOL_SIZE
    ) -> PostgresRegistry:
        """Connect to the database at `url`, creating or migrating the tables if needed.

        Raises:
            RegistryError: the server cannot be reached, or the schema is newer than this code.
        """
        pool: psycopg_pool.ConnectionPool[Conn] = psycopg_pool.ConnectionPool(
            url,
            connection_class=psycopg.Connection[dict[str, Any]],
            kwargs={"autocommit": True, "row_factory": dict_row},
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=_CONNECT_TIMEOUT,
            name="sora-mcp-registry",
        )
        registry = cls(pool, url, now)
        try:
            pool.open(wait=True, timeout=_CONNECT_TIMEOUT)
            with registry._connection() as conn:
                ensure_schema(conn, registry.url, now)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            pool.close()
            raise RegistryError(f"cannot open the registry database {registry.url}: {exc}") from exc
        except BaseException:
            pool.close()
            raise
        return registry

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def _connection(self) -> Iterator[Conn]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            raise RegistryError(
                f"the registry database {self.url} could not be reached ({type(exc).__name__}: {exc}); "
                "check the server and SORA_MCP_REGISTRY_URL."
            ) from exc
        except psycopg.Error as exc:
            raise RegistryError(
                f"the registry database {self.url} refused a read or write ({type(exc).__name__}: {exc})."
            ) from exc

    @contextmanager
    def transaction(self) -> Iterator[Conn]:
        """A connection inside one transaction: committed on success, rolled back on any error."""
        with self._connection() as conn, conn.transaction():
            yield conn

    # ---------------------------------------------------------------- videos

    def record_intent(self, rec: VideoRecord) -> VideoRecord:
        """Store a new video record before its request is sent.

        Raises:
            RegistryError: a record with the same local_id (or backend id) already exists.
        """
        with self.transaction() as conn:
            self._insert_video(conn, rec)
        return rec

    def _insert_video(self, conn: Conn, rec: VideoRecord) -> None:
        if conn.execute("SELECT 1 FROM videos WHERE local_id = %s", (rec.local_id,)).fetchone():
            raise RegistryError(f"video record {rec.local_id!r} already exists")
        self._check_owner(conn, "videos", rec.id, rec.local_id)
        write_video(conn, rec, previous=None)

    def record_submitted(
        self, local_id: str, *, video_id: str, status: str, progress: int, remote_created_at: int | None
    ) -> VideoRecord:
        """Attach the backend's id and first status to an intent, atomically.

        Raises:
            RegistryError: no record for `local_id`, or `video_id` already belongs to another record.
        """
        changes = {
            "id": video_id,
            "status": status,
            "progress": progress,
            "remote_created_at": remote_created_at,
        }
        with self.transaction() as conn:
            rec = self._lock_video(conn, local_id, by_local_id_only=True)
            return self._save_video(conn, rec, self._apply(rec, changes))

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
        records written in one transaction that holds an advisory lock, so concurrent callers on
        any host can never together spend past the limit. Refused: nothing is written.

        Raises:
            RegistryError: a record with one of these local_ids already exists.
        """
        cost = sum(rec.estimated_cost_usd for rec in recs)
        with self.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SPEND_LOCK,))
            if key is not None and (found := keyed(conn, key, key_since)) is not None:
                return Reservation(accepted=False, spent_usd=0.0, cost_usd=cost, replayed=True, records=found)
            spent = _spent_since(conn, limit.since) if limit is not None else 0.0
            if limit is not None and spent + cost > limit.limit_usd + 1e-9:
                return Reservation(accepted=False, spent_usd=spent, cost_usd=cost)
            for rec in recs:
                self._insert_video(conn, rec)
            if key is not None:
                bind_key(conn, key, tool, recs, self._now())
        return Reservation(accepted=True, spent_usd=spent, cost_usd=cost)

    def discard_intent(self, local_id: str) -> None:
        """Forget an intent the backend definitely refused, or one never sent ("pending"): no
        job, no charge. Its share of the spend is released with it.

        Raises:
            RegistryError: no such record, or it already has a backend id (never forget a job).
        """
        with self.transaction() as conn:
            rec = self._lock_video(conn, local_id, by_local_id_only=True)
            if rec.id is not None or rec.status not in ("submitting", "pending"):
                raise RegistryError(
                    f"video record {local_id!r} is {rec.status} with id {rec.id!r}; not discarding it"
                )
            unbind_key(conn, local_id)
            conn.execute("DELETE FROM videos WHERE local_id = %s", (local_id,))

    def update_video(self, key: str, **changes: Any) -> VideoRecord:
        """Change fields of the record for `key` (local id or backend id) and bump `updated_at`.

        Raises:
            RegistryError: no such record, or the changes do not validate.
        """
        with self.transaction() as conn:
            rec = self._lock_video(conn, key)
            return self._save_video(conn, rec, self._apply(rec, changes))

    def mutate_video(self, key: str, fn: Callable[[VideoRecord], VideoRecord]) -> VideoRecord:
        """Replace the record for `key` with `fn(record)`, holding its row lock meanwhile.

        Raises:
            RegistryError: no such record, or the result does not validate or changes local_id.
        """
        with self.transaction() as conn:
            rec = self._lock_video(conn, key)
            result = fn(rec)
            if not isinstance(result, VideoRecord):
                raise RegistryError(f"mutate_video expects a VideoRecord back, got {type(result).__name__}")
            return self._save_video(conn, rec, self._apply(rec, dict(result)))

    def get_video(self, key: str) -> VideoRecord | None:
        """The record whose backend id or local id is `key`, or None."""
        with self._connection() as conn:
            row = conn.execute(select_videos(_BY_KEY), {"key": key}).fetchone()
        return video_from_row(row) if row else None

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
        where = (
            "(%(status)s::text IS NULL OR v.status = %(status)s)"
            " AND (%(model)s::text IS NULL OR v.model = %(model)s)"
            " AND (%(parent)s::text IS NULL OR v.parent_id = %(parent)s)"
            " AND (%(batch)s::text IS NULL OR v.batch_id = %(batch)s)"
            " AND (%(char)s::text IS NULL OR v.character_ids @> ARRAY[%(char)s::text])"
            " AND (%(text)s::text IS NULL OR strpos(lower(v.prompt), lower(%(text)s)) > 0"
            "      OR strpos(lower(coalesce(v.note, '')), lower(%(text)s)) > 0)"
            " ORDER BY v.created_at DESC, v.local_id LIMIT %(limit)s"
        )
        params = {
            "status": status,
            "model": model,
            "parent": parent_id,
            "batch": batch_id,
            "char": character_id,
            "text": text,
            "limit": max(0, limit),
        }
        with self._connection() as conn:
            rows = conn.execute(select_videos(where), params).fetchall()
        return [video_from_row(row) for row in rows]

    def children(self, rec: VideoRecord) -> list[VideoRecord]:
        """Videos made from `rec` (their parent_id is its backend id or its local id), oldest first."""
        parents = [rec.local_id] if rec.id is None else [rec.local_id, rec.id]
        with self._connection() as conn:
            rows = conn.execute(
                select_videos("v.parent_id = ANY(%s) ORDER BY v.created_at, v.local_id"), (parents,)
            ).fetchall()
        return [video_from_row(row) for row in rows]

    def spent_since(self, since: float) -> float:
        """Estimated USD of every video recorded at or after `since` (an index range)."""
        with self._connection() as conn:
            return _spent_since(conn, since)

    def videos_since(self, since: float) -> list[VideoRecord]:
        """Every video record created at or after `since` (epoch seconds), in no order."""
        with self._connection() as conn:
            rows = conn.execute(select_videos("v.created_at >= %s"), (since,)).fetchall()
        return [video_from_row(row) for row in rows]

    def unfinished_videos(self) -> list[VideoRecord]:
        """Records still submitting, queued, in progress or unknown, oldest first (resume order)."""
        with self._connection() as conn:
            rows = conn.execute(
                select_videos("v.status = ANY(%s) ORDER BY v.created_at, v.local_id"),
                (sorted(UNFINISHED_STATUSES),),
            ).fetchall()
        return [video_from_row(row) for row in rows]

    # ---------------------------------------------------------------- characters

    def put_character(self, rec: CharacterRecord, *, key: str | None = None) -> CharacterRecord:
        """Store (or replace) a character record under its id; with `key`, the idempotency key
        its call holds is answered by it in the same transaction.

        Raises:
            RegistryError: no call holds `key`.
        """
        with self.transaction() as conn:
            write_character(conn, rec)
            if key is not None:
                answer_character_key(conn, key, rec.id)
        return rec

    def get_character(self, key: str) -> CharacterRecord | None:
        """The character whose id is `key`, else the newest whose name is `key` (exact match
        first, then case-insensitive), else None."""
        where = (
            "c.id = %(key)s OR c.name_folded = %(folded)s"
            " ORDER BY (c.id = %(key)s) DESC, (c.name = %(key)s) DESC, c.created_at DESC LIMIT 1"
        )
        with self._connection() as conn:
            row = conn.execute(select_characters(where), {"key": key, "folded": key.casefold()}).fetchone()
        return character_from_row(row) if row else None

    def list_characters(self) -> list[CharacterRecord]:
        """Every character record, newest first."""
        with self._connection() as conn:
            rows = conn.execute(select_characters("TRUE ORDER BY c.created_at DESC, c.id")).fetchall()
        return [character_from_row(row) for row in rows]

    # ---------------------------------------------------------------- batches

    def put_batch(self, rec: BatchRecord) -> BatchRecord:
        """Store (or replace) a batch record, atomically.

        Raises:
            RegistryError: its backend id already belongs to another batch.
        """
        with self.transaction() as conn:
            row = conn.execute(select_batches("b.local_id = %s FOR UPDATE OF b"), (rec.local_id,)).fetchone()
            self._save_batch(conn, batch_from_row(row) if row else None, rec)
        return rec

    def update_batch(self, key: str, **changes: Any) -> BatchRecord:
        """Change fields of the batch for `key` (local id or backend id) and bump `updated_at`.

        Raises:
            RegistryError: no such batch, or the changes do not validate.
        """
        with self.transaction() as conn:
            row = conn.execute(select_batches(_BATCH_BY_KEY + " FOR UPDATE OF b"), {"key": key}).fetchone()
            if row is None:
                raise RegistryError(f"no batch record with id or local id {key!r}")
            rec = batch_from_row(row)
            new = self._apply(rec, changes)
            self._save_batch(conn, rec, new)
        return new

    def get_batch(self, key: str) -> BatchRecord | None:
        """The batch whose backend id or local id is `key`, or None."""
        with self._connection() as conn:
            row = conn.execute(select_batches(_BATCH_BY_KEY), {"key": key}).fetchone()
        return batch_from_row(row) if row else None

    def open_batches(self) -> list[BatchRecord]:
        """Batches not finished yet (no `finished_at`), oldest first."""
        with self._connection() as conn:
            rows = conn.execute(
                select_batches("b.finished_at IS NULL ORDER BY b.created_at, b.local_id")
            ).fetchall()
        return [batch_from_row(row) for row in rows]

    def list_batches(self) -> list[BatchRecord]:
        """Every batch record, newest first."""
        with self._connection() as conn:
            rows = conn.execute(select_batches("TRUE ORDER BY b.created_at DESC, b.local_id")).fetchall()
        return [batch_from_row(row) for row in rows]

    # ---------------------------------------------------------------- helpers

    def _lock_video(self, conn: Conn, key: str, *, by_local_id_only: bool = False) -> VideoRecord:
        where = "v.local_id = %(key)s FOR UPDATE OF v" if by_local_id_only else _BY_KEY + " FOR UPDATE OF v"
        row = conn.execute(select_videos(where), {"key": key}).fetchone()
        if row is None:
            what = "local id" if by_local_id_only else "id or local id"
            raise RegistryError(f"no video record with {what} {key!r}")
        return video_from_row(row)

    def _save_video(self, conn: Conn, previous: VideoRecord, new: VideoRecord) -> VideoRecord:
        if new.id != previous.id:
            self._check_owner(conn, "videos", new.id, new.local_id)
        write_video(conn, new, previous=previous)
        return new

    def _save_batch(self, conn: Conn, previous: BatchRecord | None, new: BatchRecord) -> None:
        if previous is None or new.id != previous.id:
            self._check_owner(conn, "batches", new.id, new.local_id)
        write_batch(conn, new, previous=previous)

    @staticmethod
    def _check_owner(conn: Conn, table: str, backend_id: str | None, local_id: str) -> None:
        """Refuse a backend id another record holds (the UNIQUE constraint also guards races)."""
        if backend_id is None:
            return
        query = (
            "SELECT local_id FROM videos WHERE id = %s AND local_id <> %s"
            if table == "videos"
            else "SELECT local_id FROM batches WHERE id = %s AND local_id <> %s"
        )
        row = conn.execute(query, (backend_id, local_id)).fetchone()
        if row is not None:
            raise RegistryError(
                f"backend id {backend_id!r} is already recorded for local id {row['local_id']!r}; "
                "not recording it twice"
            )

    def _apply(self, rec: _Tracked, changes: dict[str, Any]) -> _Tracked:
        return changed(rec, changes, now=self._now())


def _conforms(registry: PostgresRegistry) -> RegistryStore:
    # mypy checks here that this store meets the contract every store must meet.
    return registry
