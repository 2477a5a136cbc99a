"""What the embedded registry offers the processes sharing its folder beyond the records:
idempotency keys (a billable call's key → the records it made, so a retry of the call finds
them instead of sending again) and the shared queue of direct-batch items (`queue.py`), each
step one diskcache write transaction. `Registry` gets these from `DiskFleet`.

Keys: "idem:<key>" → {"tool", "created_at", "local_ids"}, "idemof:<local_id>" → its key,
"queue:leases" → {local_id: {"owner", "until", "backend"}}, "pause:<backend>" → epoch seconds,
"queue:workers:<backend>" → {owner: until}, "claim:<work>" → {"owner", "until"}.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from sora_mcp.registry import index
from sora_mcp.registry.disk import loads
from sora_mcp.registry.keys import BATCH, VIDEO, VIDEO_INDEX
from sora_mcp.registry.queue import INTERRUPTED_NOTE, fair_share
from sora_mcp.registry.records import BatchRecord, VideoRecord
from sora_mcp.registry.rows import Rows

_KEY, _KEY_OF = "idem:", "idemof:"
_LEASES, _PAUSE, _WORKERS, _CLAIM = "queue:leases", "pause:", "queue:workers:", "claim:"


class DiskFleet(Rows):
    """Idempotency keys and the batch queue, inside the registry's write transactions."""

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
        call that sent nothing may be tried again with the same key). Its lease goes too."""
        leases = self._leases()
        if leases.pop(local_id, None) is not None:
            self._cache.set(_LEASES, json.dumps(leases))
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

    # ---------------------------------------------------------------- the shared batch queue

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
        with self._transaction():
            workers = self._seen_worker(backend, owner, lease_now, lease_seconds)
            if self._paused_until(backend) > self._now():
                return None
            leases = self._leases()
            live = [v for v in leases.values() if v["backend"] == backend and v["until"] > lease_now]
            mine = sum(1 for v in live if v["owner"] == owner)
            if len(live) >= concurrency or mine >= fair_share(concurrency, workers):
                return None
            open_ids = index.open_batches(self._cache)
            running = [
                b
                for local_id in open_ids
                if (b := self._read(BATCH + local_id, BatchRecord)) and b.mode == "direct"
            ]
            # A batch's items share one created_at: within it, the order they were listed in.
            order = {local_id: n for b in running for n, local_id in enumerate(b.items.values())}
            candidates = (
                self._read(VIDEO + local_id, VideoRecord)
                for local_id in index.find_videos(self._cache, status="pending")
            )
            pending = [
                rec
                for rec in candidates
                if rec is not None
                and rec.backend == backend
                and rec.local_id in order
                and rec.local_id not in skip
            ]
            if not pending:
                return None
            item = min(pending, key=lambda rec: (rec.created_at, order[rec.local_id]))
            claimed = item.model_copy(update={"status": "submitting", "updated_at": self._now()})
            self._store(VIDEO, VIDEO_INDEX, claimed, previous=item)
            leases[item.local_id] = {"owner": owner, "until": lease_now + lease_seconds, "backend": backend}
            self._cache.set(_LEASES, json.dumps(leases))
        return claimed

    def _seen_worker(self, backend: str, owner: str, lease_now: float, lease_seconds: float) -> int:
        """Count `owner` among `backend`'s workers until its next call is due; how many are live."""
        raw = self._cache.get(_WORKERS + backend)
        seen: dict[str, float] = loads(raw, _WORKERS + backend) if raw is not None else {}
        seen = {k: v for k, v in seen.items() if v > lease_now} | {owner: lease_now + lease_seconds}
        self._cache.set(_WORKERS + backend, json.dumps(seen))
        return len(seen)

    def renew_leases(self, owner: str, until: float) -> int:
        """See `queue.py`."""
        with self._transaction():
            leases = self._leases()
            mine = [k for k, v in leases.items() if v["owner"] == owner]
            for local_id in mine:
                leases[local_id]["until"] = until
            if mine:
                self._cache.set(_LEASES, json.dumps(leases))
        return len(mine)

    def release_lease(self, local_id: str, owner: str) -> None:
        """See `queue.py`."""
        with self._transaction():
            leases = self._leases()
            if leases.get(local_id, {}).get("owner") == owner:
                del leases[local_id]
                self._cache.set(_LEASES, json.dumps(leases))

    def expire_leases(self, *, lease_now: float, stale_before: float) -> list[str]:
        """See `queue.py`; returns the local ids that became 'unknown'."""
        settled: list[str] = []
        with self._transaction():
            leases = self._leases()
            lapsed = {k for k, v in leases.items() if v["until"] <= lease_now}
            submitting = index.find_videos(self._cache, status="submitting")
            for rec in (r for local_id in submitting if (r := self._read(VIDEO + local_id, VideoRecord))):
                if rec.status != "submitting" or rec.id is not None or rec.batch_id is None:
                    continue
                leased = rec.local_id in leases
                if (leased and rec.local_id in lapsed) or (not leased and rec.updated_at < stale_before):
                    new = rec.model_copy(
                        update={"status": "unknown", "note": INTERRUPTED_NOTE, "updated_at": self._now()}
                    )
                    self._store(VIDEO, VIDEO_INDEX, new, previous=rec)
                    settled.append(rec.local_id)
            if lapsed:
                self._cache.set(_LEASES, json.dumps({k: v for k, v in leases.items() if k not in lapsed}))
        return settled

    def pause_backend(self, backend: str, not_before: float) -> None:
        """See `queue.py`: the later of the stored pause and `not_before` holds."""
        with self._transaction():
            later = max(self._paused_until(backend), not_before)
            self._cache.set(_PAUSE + backend, json.dumps(later))

    def paused_until(self, backend: str) -> float:
        """See `queue.py`; 0 when no pause was ever recorded."""
        return self._paused_until(backend)

    def _paused_until(self, backend: str) -> float:
        raw = self._cache.get(_PAUSE + backend)
        return float(loads(raw, _PAUSE + backend)) if raw is not None else 0.0

    # ---------------------------------------------------------------- claims on background work

    def claim_work(self, key: str, *, owner: str, lease_now: float, lease_seconds: float) -> bool:
        """See `queue.py`."""
        with self._transaction():
            raw = self._cache.get(_CLAIM + key)
            held = loads(raw, _CLAIM + key) if raw is not None else None
            if held is not None and held["owner"] != owner and held["until"] > lease_now:
                return False
            self._cache.set(_CLAIM + key, json.dumps({"owner": owner, "until": lease_now + lease_seconds}))
        return True

    def renew_work(self, owner: str, until: float) -> int:
        """See `queue.py`."""
        renewed = 0
        with self._transaction():
            for key in index.keys_with_prefix(self._cache, _CLAIM):
                raw = self._cache.get(key)
                held = loads(raw, key) if raw is not None else None
                if held is not None and held["owner"] == owner:
                    self._cache.set(key, json.dumps({"owner": owner, "until": until}))
                    renewed += 1
        return renewed

    def release_work(self, key: str, owner: str) -> None:
        """See `queue.py`."""
        with self._transaction():
            raw = self._cache.get(_CLAIM + key)
            if raw is not None and loads(raw, _CLAIM + key)["owner"] == owner:
                self._cache.delete(_CLAIM + key)

    def _leases(self) -> dict[str, dict[str, Any]]:
        raw = self._cache.get(_LEASES)
        found: dict[str, dict[str, Any]] = loads(raw, _LEASES) if raw is not None else {}
        return found
