"""Batches: many clips in one call, every item remembered from before its request is sent.

A batch is planned completely first (`batch_plan.py`: every item checked, images prepared, all
problems reported at once), then sent one of two ways:

- native: the JSONL goes to the Files API and one `POST /batches` starts every item; the video
  ids arrive with the batch's output and error files, when it ends.
- direct: the items wait in the registry as "pending" videos and `BatchRunner` sends them one
  `POST /videos` each, a few at a time, within rate limits; a restart resumes the queue.

Either way the batch and every item live in the registry (`BatchRecord.items`: custom_id → the
local id of the item's VideoRecord), so a later session can show, follow and download them.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.to_thread

from sora_mcp.api.models import BATCH_TERMINAL_STATUSES, Batch, RequestCounts
from sora_mcp.batch.jsonl import ENDPOINT, ResultLine, parse_results, render_requests
from sora_mcp.batch.plan import BatchPlan
from sora_mcp.batch.runner import BatchRunner
from sora_mcp.errors import (
    APIConnectionError,
    APIError,
    InvalidRequest,
    OutcomeUnknown,
    RateLimitError,
    ServerError,
    SoraError,
)
from sora_mcp.files import atomic_write_bytes
from sora_mcp.registry.records import BatchMode, BatchRecord, VideoRecord
from sora_mcp.studio.studio import Studio

ModeChoice = Literal["auto", "native", "direct"]
ACTIVE_STATUSES: frozenset[str] = frozenset({"pending", "submitting", "queued", "in_progress"})
"""Item states that will still change by themselves ("unknown" waits for reconciliation)."""
PRICE_NOTE = (
    "Estimated from list prices per second of output. Backends may price batch requests lower, "
    "but that is not guaranteed, so no discount is assumed."
)
# Seconds between progress notifications during a wait (real seconds while the local queue
# sends, clock seconds between polls of a native batch).
_HEARTBEAT = 5.0
_EPSILON = 1e-3
_POLL_FIRST, _POLL_GROWTH, _POLL_MAX = 1.0, 1.5, 20.0

BatchProgress = Callable[["BatchState", float], Awaitable[None]]
"""Called with (the batch as it stands, seconds elapsed since the wait began)."""


@dataclass
class BatchState:
    """A batch and its items (custom_id → video record) as they stand."""

    record: BatchRecord
    items: dict[str, VideoRecord]
    backend_counts: RequestCounts | None = None
    """The backend's own counts while a native batch runs (its items have no ids yet)."""
    problems: list[str] = field(default_factory=list)
    """Items that could not be refreshed or downloaded this time; the others are unaffected."""

    @property
    def totals(self) -> dict[str, int]:
        return dict(Counter(record.status for record in self.items.values()))

    @property
    def cost_so_far(self) -> float:
        return round(sum(r.estimated_cost_usd for r in self.items.values() if r.status == "completed"), 2)

    @property
    def still_running(self) -> bool:
        if self.record.mode == "native" and self.record.id is not None and self.record.finished_at is None:
            return True
        return any(record.status in ACTIVE_STATUSES for record in self.items.values())


class Batches:
    """Plan, send and follow batches on one Studio; direct items are sent by `runner`."""

    def __init__(self, studio: Studio, runner: BatchRunner) -> None:
        self.studio = studio
        self.runner = runner

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
                code="unsupported",
            )
        return mode

    def estimate_seconds(self, plan: BatchPlan) -> float:
        """Typical time until one item completes once sent (the longest of the batch)."""
        return max((self.studio.estimate_seconds(item.plan) for item in plan.items), default=0.0)

    # ---- sending --------------------------------------------------------------------------

    async def submit(self, plan: BatchPlan, mode: BatchMode) -> BatchState:
        """Record the batch and its items, then send it; returns at once (direct items are sent
        in the background by the runner).

        Raises:
            APIError: native mode only, the upload or the batch creation was refused (nothing
                was started; the batch is kept as 'failed' with the reason).
            OutcomeUnknown: native mode only, the batch may exist although no answer came back.
        """
        self.studio.check_budget(plan.total_cost, f"batch of {len(plan.items)}")
        local_id = uuid.uuid4().hex
        input_path = self.studio.settings.home / "batches" / f"{local_id}.jsonl"
        content = render_requests((item.custom_id, item.body()) for item in plan.items)
        await anyio.to_thread.run_sync(_write_private, input_path, content)
        if mode == "direct":
            return self._submit_direct(plan, local_id, input_path)
        return await self._submit_native(plan, local_id, input_path, content)

    def _new_batch(self, plan: BatchPlan, local_id: str, mode: BatchMode, **fields: Any) -> BatchRecord:
        now = self.studio.clock.now()
        return BatchRecord(
            local_id=local_id,
            backend=self.studio.settings.backend_label,
            mode=mode,
            created_at=now,
            updated_at=now,
            estimated_cost_usd=plan.total_cost,
            **fields,
        )

    def _record_items(self, plan: BatchPlan, batch_id: str, status: str, note: str) -> dict[str, str]:
        items: dict[str, str] = {}
        for item in plan.items:
            intent = self.studio.new_intent(
                model=item.plan.model,
                prompt=item.plan.prompt,
                size=item.plan.size,
                seconds=item.plan.seconds,
                image_reference=item.plan.image.source if item.plan.image else item.file_id,
                estimated_cost_usd=item.plan.cost_per_clip,
                batch_id=batch_id,
                custom_id=item.custom_id,
                status=status,
                note=note,
            )
            items[item.custom_id] = self.studio.registry.record_intent(intent).local_id
        return items

    def _submit_direct(self, plan: BatchPlan, local_id: str, input_path: Path) -> BatchState:
        # Items first, then the batch that points to them: a crash in between leaves unsent
        # "pending" records that no runner picks up, never a batch with missing items.
        items = self._record_items(
            plan, local_id, "pending", "Waiting in sora-mcp's batch queue (not sent yet)."
        )
        record = self.studio.registry.put_batch(
            self._new_batch(
                plan, local_id, "direct", status="in_progress", items=items, input_path=str(input_path)
            )
        )
        self.runner.enqueue(record)
        return self._state(record)

    async def _submit_native(
        self, plan: BatchPlan, local_id: str, input_path: Path, content: bytes
    ) -> BatchState:
        registry = self.studio.registry
        client = self.studio.client
        try:
            uploaded = await client.upload_file(content=content, filename=input_path.name, purpose="batch")
        except BaseException:
            await anyio.Path(input_path).unlink(missing_ok=True)
            raise
        items = self._record_items(plan, local_id, "submitting", "Sent in a native batch.")
        record = registry.put_batch(
            self._new_batch(
                plan,
                local_id,
                "native",
                status="submitting",
                items=items,
                input_path=str(input_path),
                input_file_id=uploaded.id,
            )
        )
        try:
            batch = await client.create_batch(
                input_file_id=uploaded.id, endpoint=ENDPOINT, metadata={"sora_mcp_batch": local_id}
            )
        except OutcomeUnknown as exc:
            note = f"The batch request's answer was lost; the batch may exist. Never resubmitted. ({exc})"
            for item_id in items.values():
                registry.update_video(item_id, status="unknown", note=note)
            registry.update_batch(local_id, status="unknown", note=note)
            raise OutcomeUnknown(
                f"{exc} The batch is recorded as {local_id} with status 'unknown'; do not resubmit it.",
                request_id=exc.request_id,
            ) from exc
        except APIError as exc:
            for item_id in items.values():
                registry.discard_intent(item_id)
            registry.update_batch(local_id, status="failed", items={}, note=f"Refused by the backend: {exc}")
            raise
        note = f"Queued in native batch {batch.id}; its video id arrives when the batch completes."
        for item_id in items.values():
            registry.update_video(item_id, status="queued", note=note)
        record = registry.update_batch(local_id, id=batch.id, status=batch.status)
        return self._state(record, counts=batch.request_counts)

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
            self.runner.settle_stale(record)
            self.runner.enqueue(record)
            if wait_seconds > 0:
                await self._await_sends(record, deadline, report)
        elif record.id is not None and record.finished_at is None:
            batch = await self._poll_native(record, deadline, report)
            if batch.status in BATCH_TERMINAL_STATUSES:
                record = await self._read_results(record, batch)
            else:
                record = self.studio.registry.update_batch(record.local_id, status=batch.status)
                counts = batch.request_counts
        state = self._state(record, counts=counts)
        await self._finish_items(state, deadline if wait_seconds > 0 else None, report)
        state = self._settle(state)
        if wait_seconds > 0:
            await report(state)
        return state

    async def _await_sends(
        self, record: BatchRecord, deadline: float, report: Callable[[BatchState], Awaitable[None]]
    ) -> None:
        """Wait while this server's queue still holds items of the batch (they are sent in the
        background), reporting progress at least every few seconds."""
        clock = self.studio.clock
        while self.runner.running and clock.now() < deadline:
            changed = self.runner.change_event()
            state = self._state(record)
            if not any(self.runner.holds(r.local_id) for r in state.items.values()):
                return
            with anyio.move_on_after(_HEARTBEAT):
                await changed.wait()
            await report(self._state(record))

    async def _poll_native(
        self, record: BatchRecord, deadline: float, report: Callable[[BatchState], Awaitable[None]]
    ) -> Batch:
        assert record.id is not None
        clock = self.studio.clock
        client = self.studio.client
        batch = await client.retrieve_batch(record.id)
        interval = _POLL_FIRST
        while (
            batch.status not in BATCH_TERMINAL_STATUSES and (remaining := deadline - clock.now()) > _EPSILON
        ):
            state = self._state(record, counts=batch.request_counts)
            await report(state)
            # Long pauses between polls are cut into heartbeats so the caller hears from us.
            pause = min(interval, remaining)
            while pause > _EPSILON:
                step = min(pause, _HEARTBEAT)
                await clock.sleep(step)
                pause -= step
                if pause > _EPSILON:
                    await report(state)
            interval = min(interval * _POLL_GROWTH, _POLL_MAX)
            try:
                batch = await client.retrieve_batch(record.id)
            except (RateLimitError, ServerError, APIConnectionError):
                continue  # already retried by the client; the next poll may fare better
        return batch

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

    async def _read_results(self, record: BatchRecord, batch: Batch) -> BatchRecord:
        """Record what a finished native batch made of each item, once."""
        results: dict[str, ResultLine] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id is not None:
                content = await self.studio.client.file_content(file_id)
                results.update(parse_results(content.decode("utf-8", errors="replace")))
        for custom_id, local_id in record.items.items():
            item = self.studio.registry.get_video(local_id)
            if item is not None and item.id is None and item.status in ("queued", "submitting"):
                self._record_result(local_id, results.get(custom_id), batch)
        note = record.note
        if batch.status != "completed":
            note = f"The batch ended {batch.status}." + (f" Errors: {batch.errors}" if batch.errors else "")
        return self.studio.registry.update_batch(
            record.local_id,
            status=batch.status,
            output_file_id=batch.output_file_id,
            error_file_id=batch.error_file_id,
            finished_at=self.studio.clock.now(),
            note=note,
        )

    def _record_result(self, local_id: str, line: ResultLine | None, batch: Batch) -> None:
        registry = self.studio.registry
        video = line.video if line is not None else None
        if line is None or video is None:
            code = line.error_code if line is not None else None
            message = line.error_message if line is not None else None
            registry.update_video(
                local_id,
                status="failed",
                error_code=code or f"batch_{batch.status}",
                error_message=message or f"The batch ended {batch.status} without a result for this item.",
                note=None,
            )
            return
        status = self.studio.client.profile.normalise_status(video.status)
        if status not in ("queued", "in_progress", "completed", "failed"):
            status = "in_progress"
        registry.record_submitted(
            local_id,
            video_id=video.id,
            status=status,
            progress=100 if status == "completed" else int(video.progress or 0),
            remote_created_at=video.created_at,
        )
        error = video.error
        registry.update_video(
            local_id,
            completed_at=video.completed_at,
            expires_at=video.expires_at,
            error_code=(error.code if error else None) or (line.error_code if status == "failed" else None),
            error_message=(error.message if error else None)
            or (line.error_message if status == "failed" else None),
            note=None,
        )

    def _settle(self, state: BatchState) -> BatchState:
        """Re-read the items and, for a direct batch whose items are all final, mark it completed."""
        record = state.record
        items = self._items(record)
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

    def _items(self, record: BatchRecord) -> dict[str, VideoRecord]:
        found = {
            custom_id: self.studio.registry.get_video(local_id)
            for custom_id, local_id in record.items.items()
        }
        return {custom_id: rec for custom_id, rec in found.items() if rec is not None}

    def _state(self, record: BatchRecord, *, counts: RequestCounts | None = None) -> BatchState:
        return BatchState(record=record, items=self._items(record), backend_counts=counts)


def _write_private(path: Path, content: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write_bytes(path, content)


def _leaves(group: BaseExceptionGroup[SoraError]) -> list[SoraError]:
    found: list[SoraError] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found
