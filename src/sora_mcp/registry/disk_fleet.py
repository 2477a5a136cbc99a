"""Idempotency keys on the embedded store: a billable call's key → the records it made, so a
retry of the call (from any process sharing the folder) finds them instead of sending again.
`Registry` gets these helpers from `DiskFleet`; they run inside its write transactions.

Keys: "idem:<key>" → {"tool", "created_at", "local_ids"}, "idemof:<local_id>" → its key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sora_mcp.registry.disk import loads
from sora_mcp.registry.keys import VIDEO
from sora_mcp.registry.records import VideoRecord
from sora_mcp.registry.rows import Rows

_KEY, _KEY_OF = "idem:", "idemof:"


class DiskFleet(Rows):
    """Idempotency keys, bound in the transaction that writes the intents."""

    def _keyed(self, key: str, key_since: float | None) -> tuple[VideoRecord, ...] | None:
        """The records of a used key, or None (unused, or used before `key_since`: forgotten)."""
        raw = self._cache.get(_KEY + key)
        if raw is None:
            return None
        row = loads(raw, _KEY + key)
        if key_since is not None and row["created_at"] < key_since:
            for local_id in row["local_ids"]:
                self._cache.delete(_KEY_OF + local_id)
            self._cache.delete(_KEY + key)
            return None
        found = (self._read(VIDEO + local_id, VideoRecord) for local_id in row["local_ids"])
        return tuple(rec for rec in found if rec is not None)

    def _bind_key(self, key: str, tool: str, recs: Sequence[VideoRecord]) -> None:
        local_ids = [rec.local_id for rec in recs]
        self._cache.set(
            _KEY + key, json.dumps({"tool": tool, "created_at": self._now(), "local_ids": local_ids})
        )
        for local_id in local_ids:
            self._cache.set(_KEY_OF + local_id, json.dumps(key))

    def _unbind_key(self, local_id: str) -> None:
        """Forget a discarded intent in its key; a key left with no record is forgotten too (a
        call that sent nothing may be tried again with the same key)."""
        raw = self._cache.get(_KEY_OF + local_id)
        if raw is None:
            return
        key = loads(raw, _KEY_OF + local_id)
        self._cache.delete(_KEY_OF + local_id)
        row_raw = self._cache.get(_KEY + key)
        if row_raw is None:
            return
        row = loads(row_raw, _KEY + key)
        row["local_ids"] = [x for x in row["local_ids"] if x != local_id]
        if row["local_ids"]:
            self._cache.set(_KEY + key, json.dumps(row))
        else:
            self._cache.delete(_KEY + key)
