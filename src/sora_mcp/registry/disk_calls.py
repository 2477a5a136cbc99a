"""What the embedded registry remembers of tool calls, for every process sharing its folder:
the idempotency keys of create_character calls (a retry of the call finds its character, or
learns its first call has no answer yet, instead of uploading again) and the single-use spending
confirmation tokens (issued by one process, redeemed by any). Each step is one diskcache write
transaction. `Registry` gets these from `DiskCalls`.

Keys: "charkey:<key>" → {"created_at", "character_id" (None until the first call is answered)},
"confirm:<token>" → {"digest", "expires_at"}.
"""

from __future__ import annotations

import json

from sora_mcp.errors import RegistryError
from sora_mcp.registry.disk import loads
from sora_mcp.registry.interface import CharacterKey
from sora_mcp.registry.keys import CHARACTER
from sora_mcp.registry.records import CharacterRecord
from sora_mcp.registry.rows import Rows

_CHARACTER_KEY, _CONFIRMATION = "charkey:", "confirm:"


class DiskCalls(Rows):
    """Character idempotency keys and confirmation tokens, inside the registry's transactions."""

    def begin_character(self, key: str, *, key_since: float | None = None) -> CharacterKey:
        """See `interface.RegistryStore.begin_character`."""
        with self._transaction():
            raw = self._cache.get(_CHARACTER_KEY + key)
            row = loads(raw, _CHARACTER_KEY + key) if raw is not None else None
            if row is None or (key_since is not None and row["created_at"] < key_since):
                now = self._now()
                self._cache.set(_CHARACTER_KEY + key, json.dumps({"created_at": now, "character_id": None}))
                return CharacterKey(fresh=True, started_at=now)
        made = row["character_id"]
        found = self._read(CHARACTER + made, CharacterRecord) if made is not None else None
        return CharacterKey(fresh=False, started_at=float(row["created_at"]), record=found)

    def release_character_key(self, key: str) -> None:
        """See `interface.RegistryStore.release_character_key`; a key already answered is kept."""
        with self._transaction():
            raw = self._cache.get(_CHARACTER_KEY + key)
            if raw is not None and loads(raw, _CHARACTER_KEY + key)["character_id"] is None:
                self._cache.delete(_CHARACTER_KEY + key)

    def _answer_character_key(self, key: str, character_id: str) -> None:
        """In the caller's transaction: the key's call made `character_id`."""
        raw = self._cache.get(_CHARACTER_KEY + key)
        if raw is None:
            raise RegistryError(f"no create_character call holds the key {key!r}")
        row = loads(raw, _CHARACTER_KEY + key)
        row["character_id"] = character_id
        self._cache.set(_CHARACTER_KEY + key, json.dumps(row))

    # ---------------------------------------------------------------- confirmation tokens

    def issue_confirmation(self, token: str, digest: str, expires_at: float) -> None:
        """See `interface.RegistryStore.issue_confirmation`. diskcache drops the row itself once
        it has expired (its `expire`, on its own wall clock: a margin past `expires_at`, which
        `redeem` checks against the registry's clock)."""
        ttl = max(1.0, expires_at - self._now()) + 60.0
        with self._transaction():
            self._cache.set(
                _CONFIRMATION + token, json.dumps({"digest": digest, "expires_at": expires_at}), expire=ttl
            )

    def redeem_confirmation(self, token: str) -> tuple[str, float] | None:
        """See `interface.RegistryStore.redeem_confirmation`."""
        with self._transaction():
            raw = self._cache.get(_CONFIRMATION + token)
            if raw is None:
                return None
            self._cache.delete(_CONFIRMATION + token)
        row = loads(raw, _CONFIRMATION + token)
        return str(row["digest"]), float(row["expires_at"])
