"""Batches: many clips in one call, every item remembered from before its request is sent.

A batch is planned completely first (`plan.py`: every item checked, images prepared, all
problems reported at once), then sent one of two ways:

- native (`native.py`): the JSONL goes to the Files API and one `POST /batches` starts every
  item; the video ids arrive with the batch's output and error files, when it ends.
- direct: the items wait in the registry as "pending" videos and `BatchRunner` sends them one
  `POST /videos` each, a few at a time, within rate limits; a restart resumes the queue.

Either way the batch and every item live in the registry (`BatchRecord.items`: custom_id → the
local id of the item's VideoRecord), so a later session can show, follow and download them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

import anyio
import anyio.to_thread

from sora_mcp.api.models import BATCH_TERMINAL_STATUSES, RequestCounts
from sora_mcp.batch.jsonl import render_requests
from sora_mcp.batch.native import NativeBatches
from sora_mcp.batch.plan import BatchPlan
from sora_mcp.batch.runner import BatchRunner
from sora_mcp.batch.state import (
    ACTIVE_STATUSES,
    BatchProgress,
    BatchState,
    load_items,
    load_state,
    new_batch,
    record_items,
)
from sora_mcp.errors import InvalidRequest, SoraError
from sora_mcp.files import atomic_write_bytes
from sora_mcp.registry.records import BatchMode, BatchRecord, VideoRecord
from sora_mcp.studio.studio import Studio

__all__ = ["ACTIVE_STATUSES", "PRICE_NOTE", "BatchProgress", "BatchState", "Batches", "ModeChoice"]

ModeChoice = Literal["auto", "native", "direct"]
PRICE_NOTE = (
    "Estimated from list prices per second of output. Backends may price batch requests lower, "
    "but that is not guaranteed, so no discount is assumed."
)
# Real seconds between progress notifications while the local queue sends.
_HEARTBEAT = 5.0


class Batches:
    """Plan, send and follow batches on one Studio; direct items are sent by `runner`."""

    def __init__(self, studio: Studio, runner: BatchRunner) -> None:
        self.studio = studio
        self.runner = runner
        self.native = NativeBatches(studio)

    # ---- modes ---------------------------------------------------------------------------

    def choose_mode(self, mode: ModeChoice) -> BatchMode:
        """`auto` is native when the backend has the Batch API. Raises InvalidRequest for native
        on a backend without it."""
        capabilities = self.studio.client.capabilities
        if mode == "auto":
            return "native" if capabilities.has("batches") else "direct"
        if mode == "native":
            capabilities.require(
                "batches",
                "run a native batch",
                advice="Use mode='direct' (sora-mcp then sends the items itself) or mode='auto'.",
                param="mode",
            )
        return mode

    def estimate_seconds(self, plan: BatchPlan) -> float:
        """Typical time until one item completes once sent (the longest of the batch)."""
        return max((self.studio.estimate_seconds(item.plan) for item in plan.items), default=0.0)

    # ---- sending --------------------------------------------------------------------------

    async def submit(
        self, plan: BatchPlan, mode: BatchMode, *, idempotency_key: str | None = None
    ) -> BatchState:
        """Record the batch and its items, then send it; returns at once (direct items are sent
        in the background by the runner). A call repeating `idempotency_key` gets the first
        call's batch back and sends nothing.

        Raises:
            APIError: native mode only, the upload or the batch creation was refused (nothing
                was started; the batch is kept as 'failed' with the reason).
            OutcomeUnknown: native mode only, the batch may exist although no answer came back.
        """
        self.studio.check_budget(plan.total_cost, f"batch of {len(plan.items)}", key=idempotency_key)
        local_id = uuid.uuid4().hex
        input_path = self.studio.settings.home / "batches" / f"{local_id}.jsonl"
        content = render_requests((item.custom_id, item.body()) for item in plan.items)
        await anyio.to_thread.run_sync(_write_private, input_path, content)
        if mode == "direct":
            return await self._submit_direct(plan, local_id, input_path, idempotency_key)
        return await self.native.submit(plan, local_id, input_path, content, idempotency_key)

    async def _submit_direct(
        self, plan: BatchPlan, local_id: str, input_path: Path, key: str | None
    ) -> BatchState:
        # Items first, then the batch that points to them: a crash in between leaves unsent
        # "pending" records that no runner picks up, never a batch with missing items.
        items = record_items(
            self.studio,
            plan,
            local_id,
            "pending",
            "Waiting in sora-mcp's batch queue (not sent yet).",
            key=key,
        )
        if isinstance(items, BatchState):
            await anyio.Path(input_path).unlink(missing_ok=True)  # the first call's file is the one used
            return items
        record = self.studio.registry.put_batch(
            new_batch(
                self.studio,
                plan,
                local_id,
                "direct",
                status="in_progress",
                items=items,
                input_path=str(input_path),
            )
        )
        self.runner.enqueue(record)
        return load_state(self.studio.registry, record)

    # ---- following ------------------------------------------------------------------------

    def find(self, key: str) -> BatchRecord:
        """The batch whose local or backend id is `key`. Raises InvalidRequest naming recent ones."""
        record = self.studio.registry.get_batch(key) if key.strip() else None
        if record is None:
            recent = ", ".join(batch.local_id for batch in self.studio.registry.list_batches()[:5])
            raise InvalidRequest(
                f"No batch {key!r} in the registry. Use the batch_id returned by the batch tool"
                + (f" (recent: {recent})." if recent else "."),
                param="batch_id",
                code="unknown_batch",
            )
        return record

    async def status(
        self, key: str, *, wait_seconds: float = 0.0, on_progress: BatchProgress | None = None
    ) -> BatchState:
        """Bring the batch up to date, optionally waiting up to `wait_seconds` for it to finish,
        and download the files of completed items. A wait that ends first is not an error: the
        state says what is still running."""
        clock = self.studio.clock
        start = clock.now()
        deadline = start + max(0.0, wait_seconds)
        record = self.find(key)
        counts: RequestCounts | None = None

        async def report(state: BatchState) -> None:
            if on_progress is not None:
                await on_progress(state, clock.now() - start)

        if record.mode == "direct":
            await self.runner.settle()
            self.runner.enqueue(record)
            if wait_seconds > 0:
                await self._await_sends(record, deadline, report)
        elif record.id is not None and record.finished_at is None:
            batch = await self.native.poll(record, deadline, report)
            if batch.status in BATCH_TERMINAL_STATUSES:
                record = await self.native.read_results(record, batch)
            else:
                record = self.studio.registry.update_batch(record.local_id, status=batch.status)
                counts = batch.request_counts
        # Items whose answers were lost are looked for first, so what follows sees their jobs.
        await self.studio.lost.reconcile_all(list(load_items(self.studio.registry, record).values()))
        state = load_state(self.studio.registry, record, counts=counts)
        await self._finish_items(state, deadline if wait_seconds > 0 else None, report)
        state = self._settle(state)
        if wait_seconds > 0:
            await report(state)
        return state

    async def _await_sends(
        self, record: BatchRecord, deadline: float, report: Callable[[BatchState], Awaitable[None]]
    ) -> None:
        """Wait while items of the batch are still to be sent — by this server or any other
        sharing the registry — reporting progress at least every few seconds."""
        clock = self.studio.clock
        while self.runner.running and clock.now() < deadline:
            changed = self.runner.change_event()
            state = load_state(self.studio.registry, record)
            if not any(_unsent(r) for r in state.items.values()):
                return
            # Sends by other processes are seen by polling the registry.
            with anyio.move_on_after(min(_HEARTBEAT, self.runner.poll_seconds)):
                await changed.wait()
            await report(load_state(self.studio.registry, record))

    async def _finish_items(
        self, state: BatchState, deadline: float | None, report: Callable[[BatchState], Awaitable[None]]
    ) -> None:
        """Follow items that have a job (waiting until `deadline` when given), and download the
        files of completed ones not downloaded yet. One item's trouble does not stop the rest."""
        studio = self.studio
        follow = [
            r.local_id for r in state.items.values() if r.id is not None and r.status in ACTIVE_STATUSES
        ]
        if follow and deadline is not None:
            by_local = {r.local_id: custom_id for custom_id, r in state.items.items()}

            async def seen(records: list[VideoRecord], _elapsed: float) -> None:
                for rec in records:
                    state.items[by_local[rec.local_id]] = rec
                await report(state)

            try:
                await studio.wait(follow, timeout=max(0.0, deadline - studio.clock.now()), on_progress=seen)
            except* SoraError as group:
                state.problems.extend(str(exc) for exc in _leaves(group))
            follow = []
        for custom_id, rec in list(state.items.items()):
            fetch = rec.local_id in follow or (
                rec.id is not None and rec.status == "completed" and "video" not in rec.files
            )
            if not fetch:
                continue
            try:
                state.items[custom_id] = await studio.refresh(rec.local_id)
            except SoraError as exc:
                state.problems.append(f"{custom_id}: {exc}")

    def _settle(self, state: BatchState) -> BatchState:
        """Re-read the items and, for a direct batch whose items are all final, mark it completed."""
        record = state.record
        items = load_items(self.studio.registry, record)
        if record.mode == "direct":
            active = any(r.status in ACTIVE_STATUSES for r in items.values())
            if not active and record.finished_at is None:
                record = self.studio.registry.update_batch(
                    record.local_id, status="completed", finished_at=self.studio.clock.now()
                )
            elif active and record.status != "in_progress":
                record = self.studio.registry.update_batch(
                    record.local_id, status="in_progress", finished_at=None
                )
        return BatchState(
            record=record, items=items, backend_counts=state.backend_counts, problems=state.problems
        )


def _unsent(record: VideoRecord) -> bool:
    """Waiting in the queue, or claimed and not answered yet."""
    return record.status == "pending" or (record.status == "submitting" and record.id is None)


def _write_private(path: Path, content: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write_bytes(path, content)


def _leaves(group: BaseExceptionGroup[SoraError]) -> list[SoraError]:
    found: list[SoraError] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found
