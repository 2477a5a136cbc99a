"""Native batches: the JSONL goes to the Files API and one `POST /batches` starts every item; the
video ids arrive with the batch's output and error files, when it ends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

from sora_mcp.api.models import BATCH_TERMINAL_STATUSES, Batch
from sora_mcp.batch.jsonl import ENDPOINT, ResultLine, parse_results
from sora_mcp.batch.plan import BatchPlan
from sora_mcp.batch.state import BatchState, load_state, new_batch, record_items
from sora_mcp.errors import APIConnectionError, APIError, OutcomeUnknown, RateLimitError, ServerError
from sora_mcp.registry.records import BatchRecord
from sora_mcp.studio.studio import Studio

_HEARTBEAT = 5.0
"""Clock seconds between progress notifications while polling."""
_EPSILON = 1e-3
_POLL_FIRST, _POLL_GROWTH, _POLL_MAX = 1.0, 1.5, 20.0


class NativeBatches:
    """Send, poll and read the results of batches run by the backend's Batch API."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio

    async def submit(
        self, plan: BatchPlan, local_id: str, input_path: Path, content: bytes, key: str | None = None
    ) -> BatchState:
        registry = self.studio.registry
        client = self.studio.client
        try:
            uploaded = await client.upload_file(content=content, filename=input_path.name, purpose="batch")
        except BaseException:
            await anyio.Path(input_path).unlink(missing_ok=True)
            raise
        items = record_items(self.studio, plan, local_id, "submitting", "Sent in a native batch.", key=key)
        if isinstance(items, BatchState):
            return items  # the key's first call made the batch: this upload stays unused
        record = registry.put_batch(
            new_batch(
                self.studio,
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
        return load_state(self.studio.registry, record, counts=batch.request_counts)

    async def poll(
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
            state = load_state(self.studio.registry, record, counts=batch.request_counts)
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

    async def read_results(self, record: BatchRecord, batch: Batch) -> BatchRecord:
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
