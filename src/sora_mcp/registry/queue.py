"""The shared queue of direct-batch items, as every registry store offers it: items are
claimed with leases, so any process of a fleet sharing the registry can send the next item and
none sends one twice.

- `claim_batch_item` takes the oldest 'pending' item of a direct batch still running on
  `backend`, unless `concurrency` items of that backend already have a live lease (fleet-wide)
  or a 429 pause holds: the item becomes 'submitting' with a lease for `owner` until
  `lease_now + lease_seconds`. Every call also counts `owner` among the backend's workers for
  `lease_seconds`, and an owner already holding its `fair_share` of the slots is refused: the
  process that queued a batch (whose workers wake first) cannot keep every slot while the
  others, which only poll, find none free.
- The owner renews its leases while its sends are in flight (`renew_leases`) and drops each one
  once the send's outcome is recorded (`release_lease`).
- `expire_leases` settles the claims of owners that stopped renewing (a SIGKILL, a lost host):
  an item still 'submitting' without an id may have been sent, so it becomes 'unknown' —
  reconciled from the backend's job list, never resent. It also settles 'submitting' items
  without any lease that were last touched before `stale_before`.
- `pause_backend` records a 429's Retry-After for every process; `paused_until` reads it.

Background work that is not a batch item — following a job to its end and downloading it,
looking for the job of a lost request — is claimed the same way, by name (`claim_work`, e.g.
"follow:<local_id>"): one process of the fleet does it while its claim is renewed
(`renew_work`); when it drops the work (`release_work`) or dies (its claim lapses), another may
take it.

Lease times come from the wall clock (`lease_now`), the same on every host of a fleet; every
other time is the store's clock.
"""

from __future__ import annotations

import math

INTERRUPTED_NOTE = (
    "The send of this item was interrupted (its process stopped before the answer was recorded); "
    "a job may exist. It is reconciled from the backend's job list, never resent."
)


def fair_share(concurrency: int, workers: int) -> int:
    """The most slots one of `workers` live owners may hold of a backend's `concurrency`."""
    return max(1, math.ceil(concurrency / max(1, workers)))
