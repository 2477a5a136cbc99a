"""What the PostgreSQL registry remembers of tool calls, for every process on every host: the
idempotency keys of create_character calls (`character_keys`: a retry finds its character, or
learns its first call has no answer yet, instead of uploading again) and the single-use spending
confirmation tokens (`confirm_tokens`: issued by one replica, redeemed by any).
`PostgresRegistry` gets these from `PostgresCalls`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from sora_mcp.errors import RegistryError
from sora_mcp.registry.interface import CharacterKey
from sora_mcp.registry.postgres_rows import Conn, character_from_row, select_characters

# Takes the key, or finds who holds it, in one statement: a row inserted here is this call's.
_TAKE = (
    "INSERT INTO character_keys (key, created_at) VALUES (%(key)s, %(now)s)"
    " ON CONFLICT (key) DO UPDATE SET created_at = EXCLUDED.created_at, character_id = NULL"
    " WHERE character_keys.created_at < %(since)s RETURNING key"
)


class PostgresCalls:
    """Character idempotency keys and confirmation tokens on the registry's connection pool."""

    _now: Callable[[], float]

    def transaction(self) -> AbstractContextManager[Conn]:
        raise NotImplementedError  # PostgresRegistry.transaction

    def begin_character(self, key: str, *, key_since: float | None = None) -> CharacterKey:
        """See `interface.RegistryStore.begin_character`. A use before `key_since` is taken over
        in the same upsert, so two callers can never both be fresh."""
        now = self._now()
        since = key_since if key_since is not None else float("-inf")
        with self.transaction() as conn:
            if conn.execute(_TAKE, {"key": key, "now": now, "since": since}).fetchone() is not None:
                return CharacterKey(fresh=True, started_at=now)
            row = conn.execute(
                "SELECT created_at, character_id FROM character_keys WHERE key = %s", (key,)
            ).fetchone()
            assert row is not None  # the upsert found it, and keys are deleted only in a transaction
            made = None
            if row["character_id"] is not None:
                found = conn.execute(select_characters("c.id = %s"), (row["character_id"],)).fetchone()
                made = character_from_row(found) if found else None
        return CharacterKey(fresh=False, started_at=float(row["created_at"]), record=made)

    def release_character_key(self, key: str) -> None:
        """See `interface.RegistryStore.release_character_key`; a key already answered is kept."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM character_keys WHERE key = %s AND character_id IS NULL", (key,))

    # ---------------------------------------------------------------- confirmation tokens

    def issue_confirmation(self, token: str, digest: str, expires_at: float) -> None:
        """See `interface.RegistryStore.issue_confirmation`."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM confirm_tokens WHERE expires_at <= %s", (self._now(),))
            conn.execute(
                "INSERT INTO confirm_tokens (token, digest, expires_at) VALUES (%s, %s, %s)",
                (token, digest, expires_at),
            )

    def redeem_confirmation(self, token: str) -> tuple[str, float] | None:
        """See `interface.RegistryStore.redeem_confirmation`: a DELETE … RETURNING, so one
        redeemer gets the row."""
        with self.transaction() as conn:
            row = conn.execute(
                "DELETE FROM confirm_tokens WHERE token = %s RETURNING digest, expires_at", (token,)
            ).fetchone()
        return (str(row["digest"]), float(row["expires_at"])) if row else None


def answer_character_key(conn: Conn, key: str, character_id: str) -> None:
    """In the caller's transaction (after the character row is written): the key's call made it.

    Raises:
        RegistryError: no call holds `key`.
    """
    done = conn.execute(
        "UPDATE character_keys SET character_id = %s WHERE key = %s", (character_id, key)
    ).rowcount
    if done != 1:
        raise RegistryError(f"no create_character call holds the key {key!r}")
