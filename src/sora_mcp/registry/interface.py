"""The registry's contract: what the rest of sora-mcp asks of a store of video, character and
batch records, whichever store holds them (the embedded diskcache `Registry`, or a shared
database for a fleet of hosts).

Every implementation guarantees what the callers rely on:
- `record_intent` is durable before it returns (a billable request is sent only after it), and
  `record_submitted` attaches the backend id in one atomic write; a backend id belongs to at most
  one record (a second claim raises RegistryError).
- Records are found by local id or backend id interchangeably (`get_video`, `update_video`,
  `mutate_video`, `get_batch`, `update_batch`).
- `mutate_video` runs its function on the latest record with no other writer in between.
- Updates bump `updated_at` from the store's clock unless the change sets it.
- Every failure to read or write is a RegistryError with a message for the assistant.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

from sora_mcp.registry.records import BatchRecord, CharacterRecord, VideoRecord


@dataclass(frozen=True)
class SpendLimit:
    """At most `limit_usd` of estimated cost for videos recorded at or after `since`."""

    since: float
    limit_usd: float


@dataclass(frozen=True)
class Reservation:
    """What `record_intents` decided: `spent_usd` was already committed when `cost_usd` more was
    asked; if not `accepted`, nothing was written. `replayed`: the idempotency key was used
    before — nothing was written, `records` are the ones its first call made, send nothing."""

    accepted: bool
    spent_usd: float
    cost_usd: float
    replayed: bool = False
    records: tuple[VideoRecord, ...] = ()


@dataclass(frozen=True)
class CharacterKey:
    """What `begin_character` found for an idempotency key. `fresh`: no call held the key, this
    one does now — send the upload once, then `put_character(rec, key=…)`, or
    `release_character_key` when nothing can have been made. Otherwise the key's first call
    (started at `started_at`) made `record`, or has no answer yet (None): send nothing."""

    fresh: bool
    started_at: float
    record: CharacterRecord | None = None


class RegistryStore(Protocol):
    """A store of the registry's records. Synchronous: async callers use a worker thread."""

    def close(self) -> None: ...

    # `with store:` closes it on the way out (both stores; the CLI and the resources rely on it)
    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    # videos
    def record_intent(self, rec: VideoRecord) -> VideoRecord:
        """Store a new record before its request is sent; an existing local_id raises."""
        ...

    def record_intents(
        self,
        recs: Sequence[VideoRecord],
        *,
        limit: SpendLimit | None = None,
        key: str | None = None,
        key_since: float | None = None,
        tool: str = "",
    ) -> Reservation:
        """Store new records as one unit, only if the spend already recorded since `limit.since`
        plus their cost stays within `limit.limit_usd` — read and written in one transaction, so
        concurrent callers on any host never spend past it together. Refused: nothing written.
        Discarding an intent (`discard_intent`) releases its share.

        With an idempotency `key` (unique in the store), a key used before (at or after
        `key_since`, when given) writes nothing and answers the records of its first call
        (`replayed`); a key whose records were all discarded (nothing was sent) is free again."""
        ...

    # the shared queue of direct-batch items (see queue.py)
    def claim_batch_item(
        self,
        *,
        backend: str,
        owner: str,
        lease_now: float,
        lease_seconds: float,
        concurrency: int,
        skip: Collection[str] = (),
    ) -> VideoRecord | None: ...

    def renew_leases(self, owner: str, until: float) -> int: ...

    def release_lease(self, local_id: str, owner: str) -> None: ...

    def expire_leases(self, *, lease_now: float, stale_before: float) -> list[str]: ...

    def pause_backend(self, backend: str, not_before: float) -> None: ...

    def paused_until(self, backend: str) -> float: ...

    # claims on background work (see queue.py): one process of the fleet does each piece
    def claim_work(self, key: str, *, owner: str, lease_now: float, lease_seconds: float) -> bool:
        """Take, or keep, the claim on the work named `key` for `owner` until `lease_now +
        lease_seconds`; False while another owner's claim is live."""
        ...

    def renew_work(self, owner: str, until: float) -> int: ...

    def release_work(self, key: str, owner: str) -> None: ...

    def record_submitted(
        self, local_id: str, *, video_id: str, status: str, progress: int, remote_created_at: int | None
    ) -> VideoRecord:
        """Attach the backend's id and first status to an intent."""
        ...

    def discard_intent(self, local_id: str) -> None:
        """Forget an intent the backend definitely refused; never one with a backend id."""
        ...

    def update_video(self, key: str, **changes: Any) -> VideoRecord: ...

    def mutate_video(self, key: str, fn: Callable[[VideoRecord], VideoRecord]) -> VideoRecord: ...

    def get_video(self, key: str) -> VideoRecord | None: ...

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
        """Newest first (by created_at); `text` matches the prompt or note, case-insensitively."""
        ...

    def children(self, rec: VideoRecord) -> list[VideoRecord]:
        """Videos whose parent_id is `rec`'s backend id or local id, oldest first."""
        ...

    def spent_since(self, since: float) -> float:
        """Estimated USD of every video recorded at or after `since`."""
        ...

    def videos_since(self, since: float) -> list[VideoRecord]:
        """Every record created at or after `since`, in no order."""
        ...

    def unfinished_videos(self) -> list[VideoRecord]:
        """Records still pending, submitting, queued, in progress or unknown, oldest first."""
        ...

    # characters
    def begin_character(self, key: str, *, key_since: float | None = None) -> CharacterKey:
        """Take the idempotency `key` of a create_character call, unless a call took it before
        (at or after `key_since`, when given: an older use is forgotten). One transaction, so of
        concurrent callers on any host exactly one gets `fresh`."""
        ...

    def release_character_key(self, key: str) -> None:
        """Free a key whose call made nothing (refused, or never sent): it may be used again."""
        ...

    def put_character(self, rec: CharacterRecord, *, key: str | None = None) -> CharacterRecord:
        """Store (or replace) a character; with `key`, the key's call is answered by it, in the
        same transaction."""
        ...

    def get_character(self, key: str) -> CharacterRecord | None:
        """By id, else the newest with that exact name, else the newest with that name in any case."""
        ...

    def list_characters(self) -> list[CharacterRecord]:
        """Newest first."""
        ...

    # batches
    def put_batch(self, rec: BatchRecord) -> BatchRecord: ...

    def update_batch(self, key: str, **changes: Any) -> BatchRecord: ...

    def get_batch(self, key: str) -> BatchRecord | None: ...

    def list_batches(self) -> list[BatchRecord]:
        """Newest first."""
        ...

    def open_batches(self) -> list[BatchRecord]:
        """Batches with no `finished_at` yet, oldest first."""
        ...

    # spending confirmations (see server/confirm.py): a token issued by one process of the fleet
    # is redeemed by whichever process the confirmed call reaches
    def issue_confirmation(self, token: str, digest: str, expires_at: float) -> None:
        """Keep a single-use token bound to one call's arguments (`digest`) until `expires_at`;
        expired tokens are forgotten along the way."""
        ...

    def redeem_confirmation(self, token: str) -> tuple[str, float] | None:
        """The token's (digest, expires_at), used up by this very call; None if it was never
        issued or is already used. Of concurrent redeemers on any host, one gets it."""
        ...
