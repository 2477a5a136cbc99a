"""The direct-mode queue: a batch's items sent one `POST /videos` each, a few at a time, within
the backend's rate limits.

The queue holds nothing a crash could lose: items wait in the registry as "pending" video
records, and at start the runner re-queues every pending item of unfinished direct batches. An
item is claimed (pending → submitting, in one registry transaction, so two servers sharing a
registry never both send it) and then sent through `Studio.submit`: intent before, id after,
never retried. What the answer means for the item:

- a job id: the item follows the job like any video;
- 429: the request was not processed, so the item goes back to "pending" and every send of this
  runner pauses for the backend's Retry-After (capped) before it is sent again;
- any other refusal: "failed" with the backend's code (nothing was started or billed);
- no usable answer: "unknown" — a job may exist, so it is never sent again.

An item found "submitting" by nobody's hand (a crash mid-send) is marked "unknown" for the same
reason. Sends in flight when the server stops are allowed to finish (shielded from
cancellation) so that their outcome is recorded.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskStatus

from sora_mcp.api.inputs import FileRef, ImageURL
from sora_mcp.api.models import Video
from sora_mcp.batch.jsonl import request_bodies
from sora_mcp.errors import APIError, RateLimitError, RegistryError
from sora_mcp.registry.records import BatchRecord, VideoRecord
from sora_mcp.studio.studio import Studio

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 3
MAX_RATE_LIMIT_WAIT = 120.0
"""Longest pause honoured after a 429; a longer Retry-After is cut to this."""
DEFAULT_RATE_LIMIT_WAIT = 10.0
"""Pause after a 429 that did not say how long to wait."""
MAX_RATE_LIMITED_SENDS = 8
"""An item refused this many times for rate limits is given up ('failed'; nothing was billed)."""
_EPSILON = 1e-3


class _NotInState(Exception):
    """Raised inside a registry transaction to leave a record untouched."""


@dataclass(frozen=True)
class _Job:
    batch_id: str
    local_id: str


class BatchRunner:
    """Sends the pending items of direct batches in the background (start `run` in a task group)."""

    def __init__(self, studio: Studio, *, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.studio = studio
        self.concurrency = concurrency
        self._jobs: deque[_Job] = deque()
        self._held: set[str] = set()  # local ids queued or being sent by this runner
        self._rate_limited: dict[str, int] = {}
        self._not_before = 0.0
        self._event = anyio.Event()
        self._running = False
        self._bodies: dict[str, dict[str, dict[str, Any]]] = {}

    # ---- what callers see -----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    def holds(self, local_id: str) -> bool:
        """True while the item is queued or being sent by this runner."""
        return local_id in self._held

    def change_event(self) -> anyio.Event:
        """An event set at the runner's next change (an item sent, refused or re-queued). Take
        it before looking at the registry, then wait on it: no change can slip in between."""
        return self._event

    def enqueue(self, batch: BatchRecord) -> int:
        """Queue every pending item of `batch` this runner does not hold yet; returns how many."""
        added = 0
        for local_id in batch.items.values():
            if local_id in self._held:
                continue
            record = self.studio.registry.get_video(local_id)
            if record is not None and record.status == "pending":
                self._held.add(local_id)
                self._jobs.append(_Job(batch.local_id, local_id))
                added += 1
        if added:
            self._changed()
        return added

    def settle_stale(self, batch: BatchRecord) -> None:
        """Mark 'unknown' the items of `batch` left 'submitting' by a send that never finished
        (a crash): the request may have reached the backend, so they are never sent again."""
        stale_before = self.studio.clock.now() - 2 * self.studio.settings.request_timeout
        for local_id in batch.items.values():
            if local_id in self._held:
                continue
            self._transition(
                local_id,
                lambda rec: rec.status == "submitting" and rec.id is None and rec.updated_at < stale_before,
                status="unknown",
                note="The send of this item was interrupted; a job may exist. It is never resent.",
            )

    # ---- the loop ---------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Resume unfinished direct batches, then send queued items until cancelled."""
        try:
            self.resume()
        except RegistryError:
            log.exception("could not resume the direct batches; they resume on get_batch")
        self._running = True
        task_status.started()
        try:
            async with anyio.create_task_group() as group:
                for _ in range(self.concurrency):
                    group.start_soon(self._worker)
        finally:
            self._running = False
            self._changed()

    def resume(self) -> int:
        """Queue the pending items of every unfinished direct batch; returns how many."""
        resumed = 0
        for batch in self.studio.registry.open_batches():
            if batch.mode == "direct":
                self.settle_stale(batch)
                resumed += self.enqueue(batch)
        if resumed:
            log.info("resumed %d pending batch item(s)", resumed)
        return resumed

    async def _worker(self) -> None:
        while True:
            while not self._jobs:
                await self._event.wait()
            job = self._jobs.popleft()
            again = False
            try:
                again = await self._process(job)
            except Exception:
                # A worker must outlive any one item: the registry keeps the item's state.
                log.exception("batch item %s could not be processed", job.local_id)
            if again:
                self._jobs.append(job)
            else:
                self._held.discard(job.local_id)
                self._rate_limited.pop(job.local_id, None)
            self._changed()

    async def _process(self, job: _Job) -> bool:
        """Send one item; True when it must be sent again later (rate limited)."""
        clock = self.studio.clock
        while (delay := self._not_before - clock.now()) > _EPSILON:
            await clock.sleep(delay)
        record = self.studio.registry.get_video(job.local_id)
        if record is None or record.status != "pending":
            return False
        try:
            reference = await self._reference(job, record)
        except (OSError, ValueError, KeyError) as exc:
            self._transition(
                job.local_id,
                lambda rec: rec.status == "pending",
                status="failed",
                error_code="batch_input_missing",
                error_message=f"The batch's input file could not be read ({exc}); the item was not sent.",
            )
            return False
        # Once claimed, the send must finish even if the server is stopping, or its outcome
        # (a billed job, perhaps) would go unrecorded.
        with anyio.CancelScope(shield=True):
            claimed = self._transition(job.local_id, lambda rec: rec.status == "pending", status="submitting")
            if claimed is None:
                return False
            try:
                await self.studio.submit(claimed, lambda: self._create(claimed, reference), keep_refused=True)
            except RateLimitError as exc:
                return self._after_rate_limit(job, exc)
            except APIError as exc:
                log.info("batch item %s not started: %s", job.local_id, exc)  # recorded by submit
        return False

    def _create(self, record: VideoRecord, reference: ImageURL | FileRef | None) -> Awaitable[Video]:
        return self.studio.client.create_video(
            prompt=record.prompt,
            model=record.model,
            size=record.size,
            seconds=record.seconds,
            input_reference=reference,
        )

    def _after_rate_limit(self, job: _Job, exc: RateLimitError) -> bool:
        count = self._rate_limited.get(job.local_id, 0) + 1
        self._rate_limited[job.local_id] = count
        if exc.code == "insufficient_quota" or count >= MAX_RATE_LIMITED_SENDS:
            self._transition(
                job.local_id,
                lambda rec: rec.status == "pending",
                status="failed",
                error_code=exc.code or "rate_limit_exceeded",
                error_message=f"{exc} Gave up after {count} refused attempt(s); nothing was billed.",
            )
            return False
        wait = exc.retry_after if exc.retry_after is not None else DEFAULT_RATE_LIMIT_WAIT
        self._not_before = max(self._not_before, self.studio.clock.now() + min(wait, MAX_RATE_LIMIT_WAIT))
        return True

    async def _reference(self, job: _Job, record: VideoRecord) -> ImageURL | FileRef | None:
        """The item's image reference, read back from the batch's input file."""
        if record.image_reference is None or record.custom_id is None:
            return None
        bodies = self._bodies.get(job.batch_id)
        if bodies is None:
            batch = self.studio.registry.get_batch(job.batch_id)
            if batch is None or batch.input_path is None:
                raise KeyError(f"batch {job.batch_id} has no input file")
            bodies = request_bodies(await anyio.Path(batch.input_path).read_text(encoding="utf-8"))
            self._bodies[job.batch_id] = bodies
        reference = bodies[record.custom_id].get("input_reference")
        if not isinstance(reference, Mapping):
            return None
        if isinstance(reference.get("file_id"), str):
            return FileRef(reference["file_id"])
        return ImageURL(str(reference["image_url"]))

    def _transition(
        self, local_id: str, allowed: Callable[[VideoRecord], bool], **changes: Any
    ) -> VideoRecord | None:
        """Apply `changes` to the record in one transaction if `allowed(record)`; else None."""

        def change(record: VideoRecord) -> VideoRecord:
            if not allowed(record):
                raise _NotInState
            return record.model_copy(update=changes)

        try:
            return self.studio.registry.mutate_video(local_id, change)
        except _NotInState:
            return None

    def _changed(self) -> None:
        self._event.set()
        self._event = anyio.Event()
