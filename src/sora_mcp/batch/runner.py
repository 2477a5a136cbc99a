"""The direct-mode queue: a batch's items sent one `POST /videos` each, a few at a time, within
the backend's rate limits — by whichever server process sharing the registry is free.

The queue is the registry (`registry/queue.py`): items wait there as "pending" video records.
A worker claims the oldest pending item of its backend with a lease (pending → submitting, one
registry transaction, so no two processes ever both send it), and sends it through
`Studio.submit`: intent before, id after, never retried. The lease is renewed while the send is
in flight and dropped once its outcome is recorded. How many items a backend has in flight and
any 429 pause are counted across the fleet. What the answer means for the item:

- a job id: the item follows the job like any video;
- 429: the request was not processed, so the item goes back to "pending" and every process
  pauses sends to that backend for its Retry-After (capped);
- any other refusal: "failed" with the backend's code (nothing was started or billed);
- no usable answer: "unknown" — a job may exist, so it is never sent again.

A process that dies mid-send stops renewing: once its lease lapses, any other process marks the
item "unknown" (its POST may have gone out) and looks for its job in the backend's list — never
resends it — and the items the dead process had not claimed are simply claimed by the others.
Sends in flight when the server stops are allowed to finish (shielded from cancellation).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskStatus

from sora_mcp.api.inputs import FileRef, ImageURL
from sora_mcp.api.models import Video
from sora_mcp.batch.jsonl import request_bodies
from sora_mcp.clock import Clock, SystemClock
from sora_mcp.errors import APIError, RateLimitError, RegistryError, SoraError
from sora_mcp.registry.records import BatchRecord, VideoRecord
from sora_mcp.studio.studio import Studio

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 3
"""Items of one backend in flight at once, across every process sharing the registry."""
MAX_RATE_LIMIT_WAIT = 120.0
"""Longest pause honoured after a 429; a longer Retry-After is cut to this."""
DEFAULT_RATE_LIMIT_WAIT = 10.0
"""Pause after a 429 that did not say how long to wait."""
MAX_RATE_LIMITED_SENDS = 8
"""An item refused this many times for rate limits is given up ('failed'; nothing was billed)."""
LEASE_SECONDS = 30.0
"""How long a claim holds without a heartbeat: a dead sender's items are settled after this."""
POLL_SECONDS = 1.0
"""How often an idle worker looks for items other processes queued (real seconds)."""
_EPSILON = 1e-3


class BatchRunner:
    """Sends pending direct-batch items in the background (start `run` in a task group)."""

    def __init__(
        self,
        studio: Studio,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        lease_seconds: float = LEASE_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        lease_clock: Clock | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.studio = studio
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        # Leases are compared across hosts: wall-clock time, whatever clock the studio runs on.
        self.lease_clock = lease_clock or SystemClock()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._sending: set[str] = set()  # local ids this process is sending now
        self._unreadable: set[str] = set()  # items whose batch input this host cannot read
        self._rate_limited: dict[str, int] = {}
        self._bodies: dict[str, dict[str, dict[str, Any]]] = {}
        self._event = anyio.Event()
        self._running = False
        self._next_settle = 0.0

    # ---- what callers see -----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    def holds(self, local_id: str) -> bool:
        """True while this process is sending the item."""
        return local_id in self._sending

    def change_event(self) -> anyio.Event:
        """An event set at the runner's next change (an item sent, refused or re-queued). Take
        it before looking at the registry, then wait on it: no change can slip in between."""
        return self._event

    def enqueue(self, batch: BatchRecord) -> int:
        """Wake the workers for `batch`'s pending items (they are claimed from the registry);
        returns how many are pending."""
        pending = sum(
            1
            for local_id in batch.items.values()
            if (rec := self.studio.registry.get_video(local_id)) is not None and rec.status == "pending"
        )
        if pending:
            self._changed()
        return pending

    def settle_stale(self, batch: BatchRecord | None = None) -> list[str]:
        """Mark 'unknown' the items left 'submitting' by a sender that stopped (its lease lapsed,
        or it held none and the record is older than any request can take): the request may
        have reached the backend, so they are never sent again. Returns their local ids."""
        stale_before = self.studio.clock.now() - 2 * self.studio.settings.request_timeout
        return self.studio.registry.expire_leases(lease_now=self.lease_clock.now(), stale_before=stale_before)

    # ---- the loop ---------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Settle the sends interrupted earlier, then send pending items until cancelled, with
        `concurrency` workers and a heartbeat."""
        try:
            await self.settle()  # before the resumer starts: these are batch items, never resent
        except RegistryError:
            log.exception("could not settle interrupted batch items; get_batch settles them")
        self._next_settle = self.lease_clock.now() + self.lease_seconds / 3
        self._running = True
        task_status.started()
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._heartbeat)
                for _ in range(self.concurrency):
                    group.start_soon(self._worker)
        finally:
            self._running = False
            self._changed()

    def resume(self) -> int:
        """Wake the workers for every pending item; returns how many are pending."""
        return sum(self.enqueue(b) for b in self.studio.registry.open_batches() if b.mode == "direct")

    async def _worker(self) -> None:
        while True:
            try:
                claimed = await self._claim()
            except RegistryError:
                log.exception("could not claim a batch item; trying again")
                claimed = None
            if claimed is None:
                with anyio.move_on_after(self.poll_seconds):
                    await self._event.wait()
                continue
            try:
                await self._send(claimed)
            except Exception:
                # A worker must outlive any one item: the registry keeps the item's state.
                log.exception("batch item %s could not be processed", claimed.local_id)
            finally:
                self._sending.discard(claimed.local_id)
                self._changed()

    async def _claim(self) -> VideoRecord | None:
        registry = self.studio.registry
        backend = self.studio.settings.backend_label
        clock = self.studio.clock
        while (delay := registry.paused_until(backend) - clock.now()) > _EPSILON:
            await clock.sleep(min(delay, MAX_RATE_LIMIT_WAIT))
        if self.lease_clock.now() >= self._next_settle:
            self._next_settle = self.lease_clock.now() + self.lease_seconds / 3
            await self.settle()
        claimed = registry.claim_batch_item(
            backend=backend,
            owner=self.owner,
            lease_now=self.lease_clock.now(),
            lease_seconds=self.lease_seconds,
            concurrency=self.concurrency,
            skip=self._unreadable,
        )
        if claimed is not None:
            self._sending.add(claimed.local_id)
        return claimed

    async def settle(self) -> None:
        """`settle_stale`, then look for the job of every item it settled (never resend it)."""
        for local_id in self.settle_stale():
            record = self.studio.registry.get_video(local_id)
            if record is None:
                continue
            try:
                await self.studio.reconcile(record)
            except SoraError as exc:
                log.warning("could not look for the job of interrupted batch item %s: %s", local_id, exc)

    async def _heartbeat(self) -> None:
        """Renew this process's leases while it sends; a lapse would let another settle them."""
        while True:
            await anyio.sleep(self.lease_seconds / 3)
            if self._sending:
                try:
                    self.studio.registry.renew_leases(self.owner, self.lease_clock.now() + self.lease_seconds)
                except RegistryError:
                    log.exception(
                        "could not renew the batch leases; they lapse in %.0f s", self.lease_seconds
                    )

    async def _send(self, claimed: VideoRecord) -> None:
        """Send one claimed item and record its outcome; the lease goes once it is recorded."""
        registry = self.studio.registry
        try:
            reference = await self._reference(claimed)
        except (OSError, ValueError, KeyError) as exc:
            self._input_missing(claimed, exc)
            return
        # Once claimed, the send must finish even if the server is stopping, or its outcome
        # (a billed job, perhaps) would go unrecorded.
        with anyio.CancelScope(shield=True):
            try:
                await self.studio.submit(claimed, lambda: self._create(claimed, reference), keep_refused=True)
            except RateLimitError as exc:
                self._after_rate_limit(claimed, exc)
            except APIError as exc:
                log.info("batch item %s not started: %s", claimed.local_id, exc)  # recorded by submit
            finally:
                registry.release_lease(claimed.local_id, self.owner)

    def _input_missing(self, claimed: VideoRecord, exc: Exception) -> None:
        """The batch's input file cannot be read. Written by a server with another home (another
        host of the fleet): back to 'pending' for a process there, never claimed again here.
        Written under this home and gone: the item fails, unsent."""
        registry = self.studio.registry
        batch = registry.get_batch(claimed.batch_id) if claimed.batch_id else None
        home = self.studio.settings.home
        elsewhere = (
            batch is not None
            and batch.input_path is not None
            and not Path(batch.input_path).is_relative_to(home)
        )
        if elsewhere:
            log.warning(
                "batch item %s: its input is on another host (%s); left for it", claimed.local_id, exc
            )
            self._unreadable.add(claimed.local_id)
            registry.update_video(claimed.local_id, status="pending")
        else:
            registry.update_video(
                claimed.local_id,
                status="failed",
                error_code="batch_input_missing",
                error_message=f"The batch's input file could not be read ({exc}); the item was not sent.",
            )
        registry.release_lease(claimed.local_id, self.owner)

    def _create(self, record: VideoRecord, reference: ImageURL | FileRef | None) -> Awaitable[Video]:
        return self.studio.client.create_video(
            prompt=record.prompt,
            model=record.model,
            size=record.size,
            seconds=record.seconds,
            input_reference=reference,
        )

    def _after_rate_limit(self, record: VideoRecord, exc: RateLimitError) -> None:
        count = self._rate_limited.get(record.local_id, 0) + 1
        self._rate_limited[record.local_id] = count
        if exc.code == "insufficient_quota" or count >= MAX_RATE_LIMITED_SENDS:
            self.studio.registry.update_video(
                record.local_id,
                status="failed",
                error_code=exc.code or "rate_limit_exceeded",
                error_message=f"{exc} Gave up after {count} refused attempt(s); nothing was billed.",
            )
            return
        wait = exc.retry_after if exc.retry_after is not None else DEFAULT_RATE_LIMIT_WAIT
        not_before = self.studio.clock.now() + min(wait, MAX_RATE_LIMIT_WAIT)
        self.studio.registry.pause_backend(self.studio.settings.backend_label, not_before)

    async def _reference(self, record: VideoRecord) -> ImageURL | FileRef | None:
        """The item's image reference, read back from the batch's input file."""
        if record.image_reference is None or record.custom_id is None or record.batch_id is None:
            return None
        bodies = self._bodies.get(record.batch_id)
        if bodies is None:
            batch = self.studio.registry.get_batch(record.batch_id)
            if batch is None or batch.input_path is None:
                raise KeyError(f"batch {record.batch_id} has no input file")
            bodies = request_bodies(await anyio.Path(batch.input_path).read_text(encoding="utf-8"))
            self._bodies[record.batch_id] = bodies
        reference = bodies[record.custom_id].get("input_reference")
        if not isinstance(reference, Mapping):
            return None
        if isinstance(reference.get("file_id"), str):
            return FileRef(reference["file_id"])
        return ImageURL(str(reference["image_url"]))

    def _changed(self) -> None:
        self._event.set()
        self._event = anyio.Event()
