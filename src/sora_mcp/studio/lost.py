"""Requests without an id: wait for the ones in flight, look for the lost ones, record the jobs
the registry could not take — for `Studio`, the tools' reads and the background reconciler.

Everything here is bounded: a wait for a request in flight ends with the caller's timeout, and a
look for lost jobs at a read ends after `READ_RECONCILE_SECONDS` (what is not found yet is left
to the next read or to the background reconciler).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field

import anyio

from sora_mcp.api.client import VideosClient
from sora_mcp.clock import Clock
from sora_mcp.errors import RegistryError
from sora_mcp.registry.interface import RegistryStore
from sora_mcp.registry.records import VideoRecord
from sora_mcp.studio.claims import FleetClaims
from sora_mcp.studio.inflight import InFlight
from sora_mcp.studio.reconcile import WAITING_NOTE, in_flight, needs_reconciling, reconcile_many
from sora_mcp.studio.submission import Unrecorded, record_unrecorded

log = logging.getLogger(__name__)

READ_RECONCILE_SECONDS = 10.0
"""Longest (real seconds) a read such as list_videos spends looking for lost jobs first."""
OTHER_PROCESS_POLL_SECONDS = 0.25
"""How often a wait re-reads a request that another process is sending."""
# Joins why a request was lost to the outcome of the latest look for its job.
LATEST_CHECK = " Latest check: "


@dataclass
class LostRequests:
    """The requests of one registry that have no id yet, and what to do about them."""

    client: VideosClient
    registry: RegistryStore
    clock: Clock
    in_flight: InFlight = field(default_factory=InFlight)
    unrecorded: Unrecorded = field(default_factory=dict)
    claims: FleetClaims | None = None
    """The fleet's claims: one server at a time looks for lost jobs of `backend`."""
    backend: str = ""
    # One reconciliation at a time here: two concurrent ones could attach two look-alike jobs
    # to the same lost request. Across the servers sharing the registry, the claim does the same.
    _lock: anyio.Lock = field(default_factory=anyio.Lock)

    def record_unrecorded(self) -> None:
        if self.unrecorded:
            record_unrecorded(self.registry, self.unrecorded)

    async def reconcile(self, records: Sequence[VideoRecord]) -> list[VideoRecord]:
        """Look for the jobs of the lost requests among `records` in the backend's list — never
        by sending a request again — and return the latest version of each record. A record
        still without a job keeps the reason it was lost next to the latest check, so the model
        still reads "do not resubmit"."""
        self.record_unrecorded()
        async with self._lock, self._fleet_turn():
            current = [self.registry.get_video(r.local_id) or r for r in records]
            found = await reconcile_many(
                current, client=self.client, registry=self.registry, clock=self.clock
            )
        return [
            _keep_origin(self.registry, before, after) for before, after in zip(current, found, strict=True)
        ]

    def _fleet_turn(self) -> AbstractAsyncContextManager[None]:
        if self.claims is None:
            return nullcontext()
        return self.claims.holding(f"reconcile:{self.backend}", poll=OTHER_PROCESS_POLL_SECONDS)

    async def reconcile_all(self, records: Sequence[VideoRecord] | None = None) -> None:
        """Look for every lost request (or those among `records`) for at most
        `READ_RECONCILE_SECONDS`; what a read does before it answers. Never raises for the
        backend: a failed look is noted on the records."""
        self.record_unrecorded()
        candidates = self.registry.unfinished_videos() if records is None else records
        now = self.clock.now()
        lost = [r for r in candidates if needs_reconciling(r, now)]
        if lost:
            with anyio.move_on_after(READ_RECONCILE_SECONDS):
                await self.reconcile(lost)

    async def resolve(self, record: VideoRecord, timeout: float) -> VideoRecord:
        """The latest `record` of a request without an id, after waiting (at most `timeout`) for
        its answer while it is in flight, and looking for its job when it was lost — again each
        time a request with the same prompt settles, while its look has to wait for them."""
        deadline = self.clock.now() + max(0.0, timeout)
        with anyio.move_on_after(max(0.0, timeout)):
            while record.id is None and self.clock.now() < deadline:
                news = self.in_flight.news
                now = self.clock.now()
                if in_flight(record, now):
                    await self._until_settled(record)
                elif needs_reconciling(record, now):
                    (record,) = await self.reconcile([record])
                    if record.id is not None or WAITING_NOTE not in (record.note or ""):
                        break
                    with anyio.move_on_after(OTHER_PROCESS_POLL_SECONDS * 4):
                        await news.wait()
                else:
                    break
                record = self.registry.get_video(record.local_id) or record
        return self.registry.get_video(record.local_id) or record

    async def _until_settled(self, record: VideoRecord) -> None:
        settled = self.in_flight.settled(record.local_id)
        if settled is not None:
            await settled.wait()
        else:
            await self.clock.sleep(OTHER_PROCESS_POLL_SECONDS)  # another process is sending it


def _keep_origin(registry: RegistryStore, before: VideoRecord, after: VideoRecord) -> VideoRecord:
    if after.id is not None or not before.note or after.note == before.note:
        return after
    origin = before.note.split(LATEST_CHECK)[0]
    try:
        return registry.update_video(after.local_id, note=f"{origin}{LATEST_CHECK}{after.note}")
    except RegistryError:
        log.warning("could not keep the note of lost request %s", after.local_id)
        return after
