"""A batch as it stands: its record, its items' records, and how both are first written."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sora_mcp.api.models import RequestCounts
from sora_mcp.batch.plan import BatchPlan
from sora_mcp.errors import InvalidRequest
from sora_mcp.registry.interface import RegistryStore
from sora_mcp.registry.records import BatchMode, BatchRecord, VideoRecord
from sora_mcp.studio.studio import Studio

ACTIVE_STATUSES: frozenset[str] = frozenset({"pending", "submitting", "queued", "in_progress"})
"""Item states that will still change by themselves; an "unknown" one changes when its job is
found (or given up), which `BatchState.still_running` also waits for."""


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
    def unresolved(self) -> dict[str, int]:
        """Items not settled although nothing runs for them: answers lost (their jobs are being
        looked for) and completed videos whose file is not here yet."""
        lost = sum(r.status in ("unknown", "submitting") and r.id is None for r in self.items.values())
        unsaved = sum(r.status == "completed" and "video" not in r.files for r in self.items.values())
        return {k: v for k, v in (("lost", lost), ("without_file", unsaved)) if v}

    @property
    def still_running(self) -> bool:
        if self.record.mode == "native" and self.record.id is not None and self.record.finished_at is None:
            return True
        # A lost answer is still being looked for (by every read and the resumer) until it is
        # found or given up as `request_lost`: the batch is not over while its job may exist.
        active = any(record.status in ACTIVE_STATUSES for record in self.items.values())
        return active or "lost" in self.unresolved


BatchProgress = Callable[[BatchState, float], Awaitable[None]]
"""Called with (the batch as it stands, seconds elapsed since the wait began)."""


def load_items(registry: RegistryStore, record: BatchRecord) -> dict[str, VideoRecord]:
    """The batch's items as the registry holds them now (custom_id → record)."""
    found = {custom_id: registry.get_video(local_id) for custom_id, local_id in record.items.items()}
    return {custom_id: rec for custom_id, rec in found.items() if rec is not None}


def load_state(
    registry: RegistryStore, record: BatchRecord, *, counts: RequestCounts | None = None
) -> BatchState:
    return BatchState(record=record, items=load_items(registry, record), backend_counts=counts)


def new_batch(studio: Studio, plan: BatchPlan, local_id: str, mode: BatchMode, **fields: Any) -> BatchRecord:
    """A fresh, not yet stored, record for a batch about to be sent."""
    now = studio.clock.now()
    return BatchRecord(
        local_id=local_id,
        backend=studio.settings.backend_label,
        mode=mode,
        created_at=now,
        updated_at=now,
        estimated_cost_usd=plan.total_cost,
        **fields,
    )


def record_items(
    studio: Studio, plan: BatchPlan, batch_id: str, status: str, note: str, *, key: str | None = None
) -> dict[str, str] | BatchState:
    """Store one video record per item (before anything is sent); custom_id → local id.

    Every item is reserved against the budget as one unit, in one registry transaction. When
    the idempotency `key` was used before, nothing is stored and the state of the batch its
    first call made comes back instead (send nothing then).

    Raises:
        BudgetExceeded: the items do not fit the spending limits; nothing was stored.
        InvalidRequest: the key's first call has not recorded its batch (yet).
    """
    intents = [
        studio.new_intent(
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
        for item in plan.items
    ]
    reservation = studio.reserve(intents, f"batch of {len(plan.items)}", key=key, tool="batch")
    if not reservation.replayed:
        return {item.custom_id: intent.local_id for item, intent in zip(plan.items, intents, strict=True)}
    first = next((r.batch_id for r in reservation.records if r.batch_id), None)
    batch = studio.registry.get_batch(first) if first else None
    if batch is None:
        raise InvalidRequest(
            f"idempotency_key {key!r} belongs to a batch call that has not finished recording its "
            "batch; call get_batch later, or use a new key for a new batch.",
            param="idempotency_key",
        )
    return load_state(studio.registry, batch)
