"""Batch tools: `batch` starts many clips at once, `get_batch` follows them item by item.

The work happens in `sora_mcp.batch.service` (planning, sending, following) and its runner; this module
shapes the answers for the model and turns domain errors into tool errors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from pydantic import Field

from sora_mcp.batch.plan import MAX_ITEMS, BatchPlan, BatchRequest, plan_batch
from sora_mcp.batch.service import PRICE_NOTE, Batches, BatchState, ModeChoice
from sora_mcp.registry.records import VideoRecord
from sora_mcp.server.common import ClientRoots, IdempotencyKey, WaitSeconds, recommended_wait, wait_limit
from sora_mcp.server.common import idempotency_key as key_for
from sora_mcp.server.confirm import BatchApproval, ConfirmToken, require_consent
from sora_mcp.server.schemas import OutputModel, VideoError
from sora_mcp.server.state import AppState

_FINAL = frozenset({"completed", "failed", "unknown", "deleted"})


class BatchItemView(OutputModel):
    """One item of a batch."""

    custom_id: str
    video_id: str | None = Field(
        description="The backend's video id once known; works with get_video and download."
    )
    local_id: str = Field(description="sora-mcp's own id, recorded before the request was sent.")
    status: str = Field(
        description="pending (queued here, not sent) | submitting | queued | in_progress | completed | "
        "failed | unknown (answer lost; never resent)."
    )
    progress: int
    model: str
    size: str
    seconds: int
    prompt: str
    error: VideoError | None = None
    files: dict[str, str] = Field(description="Downloaded variants: name → absolute path.")
    estimated_cost_usd: float
    note: str | None = None

    @classmethod
    def of(cls, custom_id: str, record: VideoRecord) -> BatchItemView:
        return cls(
            custom_id=custom_id,
            video_id=record.id,
            local_id=record.local_id,
            status=record.status,
            progress=100 if record.status == "completed" else record.progress,
            model=record.model,
            size=record.size,
            seconds=record.seconds,
            prompt=record.prompt,
            error=VideoError.of(record),
            files=dict(record.files),
            estimated_cost_usd=record.estimated_cost_usd,
            note=record.note,
        )


class PlannedItemView(OutputModel):
    custom_id: str
    model: str
    size: str
    seconds: int
    estimated_cost_usd: float
    image_reference: str | None = None


class BatchStartResult(OutputModel):
    batch_id: str | None = Field(description="Pass it to get_batch. None for a dry run (nothing was sent).")
    backend_batch_id: str | None = Field(description="The backend's batch id (native mode).")
    mode: Literal["native", "direct"]
    dry_run: bool
    status: str
    count: int
    items: list[PlannedItemView]
    estimated_total_usd: float = Field(description="From list prices.")
    estimated_seconds_each: float
    price_note: str
    simulated: bool = Field(description="True on the built-in emulator (nothing billed).")
    next_step: str


class GetBatchResult(OutputModel):
    batch_id: str
    backend_batch_id: str | None = None
    mode: Literal["native", "direct"]
    status: str = Field(
        description="direct: in_progress | completed; native: the backend's batch status, or submitting "
        "/ unknown."
    )
    items: dict[str, BatchItemView] = Field(description="Every item, keyed by custom_id.")
    totals: dict[str, int] = Field(description="Items per status.")
    backend_counts: dict[str, int] | None = Field(
        default=None, description="The backend's own counts while a native batch runs."
    )
    estimated_total_usd: float
    cost_so_far_usd: float = Field(description="Items completed so far, at list prices.")
    still_running: bool = Field(description="True while some items can still change; call get_batch again.")
    problems: list[str] = Field(description="Items that could not be refreshed or downloaded this time.")
    note: str | None = None
    next_step: str


def _batches(ctx: Context[AppState]) -> Batches:
    return ctx.request_context.lifespan_context.batches


async def batch(
    ctx: Context[AppState],
    client_roots: ClientRoots,
    approval: BatchApproval,
    requests: Annotated[
        list[BatchRequest] | None,
        Field(
            description=f"The clips (1–{MAX_ITEMS}), each like generate's arguments plus custom_id. "
            "This or jsonl_path."
        ),
    ] = None,
    jsonl_path: Annotated[
        str | None,
        Field(
            description='A JSONL file in the Batch API format (lines {"custom_id", "method": "POST", '
            '"url": "/v1/videos", "body": {…}}), in the output folder or an input folder.'
        ),
    ] = None,
    mode: Annotated[
        ModeChoice,
        Field(
            description="native: the backend's Batch API; direct: sora-mcp sends the items (3 at a time, "
            "pausing on rate limits); auto: native when the backend has one."
        ),
    ] = "auto",
    dry_run: Annotated[
        bool, Field(description="Only check the items and show the estimated cost; send nothing.")
    ] = False,
    confirm_token: ConfirmToken = None,
    idempotency_key: IdempotencyKey = None,
) -> BatchStartResult:
    """Start many clips at once, from a list of requests or a JSONL file. COST: each item like
    generate (batch discounts not guaranteed); all items are checked first (nothing sent on a
    problem) and the total estimated. TIME: returns at once; items take minutes. NEXT:
    get_batch(batch_id, wait_seconds=40) while still_running. Never call batch again to "retry":
    that bills every item again.
    """
    require_consent(approval)
    batches = _batches(ctx)
    chosen = batches.choose_mode(mode)
    plan = await plan_batch(batches.studio, requests=requests, jsonl_path=jsonl_path)
    if dry_run:
        return _start_result(batches, plan, chosen, None)
    key = key_for(ctx, idempotency_key)
    return _start_result(batches, plan, chosen, await batches.submit(plan, chosen, idempotency_key=key))


async def get_batch(
    batch_id: Annotated[str, Field(description="The batch_id returned by the batch tool.")],
    ctx: Context[AppState],
    wait_seconds: WaitSeconds = 0,
) -> GetBatchResult:
    """Show a batch: every item's status keyed by custom_id, totals, cost so far; optionally wait
    for every item, sending progress.

    FREE (queued items of a direct batch keep being sent). Call again while still_running is true.
    Completed items are downloaded automatically; failed ones carry error.code: rephrase those.
    """
    batches = _batches(ctx)
    settings = batches.studio.settings
    wait = wait_limit(settings, wait_seconds)
    state = await batches.status(batch_id, wait_seconds=wait, on_progress=_reporter(ctx))
    return _status_result(state, recommended_wait(settings))


def _start_result(
    batches: Batches, plan: BatchPlan, mode: Literal["native", "direct"], state: BatchState | None
) -> BatchStartResult:
    simulated = batches.studio.settings.is_emulator
    items = [
        PlannedItemView(
            custom_id=item.custom_id,
            model=item.plan.model,
            size=item.plan.size,
            seconds=item.plan.seconds,
            estimated_cost_usd=item.plan.cost_per_clip,
            image_reference=item.plan.image.source if item.plan.image else item.file_id,
        )
        for item in plan.items
    ]
    if state is None:
        next_step = "Nothing was sent. Call batch again without dry_run to start these items."
    else:
        next_step = (
            f"Call get_batch(batch_id='{state.record.local_id}', "
            f"wait_seconds={recommended_wait(batches.studio.settings)}), again while still_running is true."
        )
    return BatchStartResult(
        batch_id=state.record.local_id if state else None,
        backend_batch_id=state.record.id if state else None,
        mode=mode,
        dry_run=state is None,
        status=state.record.status if state else "planned",
        count=len(items),
        items=items,
        estimated_total_usd=plan.total_cost,
        estimated_seconds_each=batches.estimate_seconds(plan),
        price_note=PRICE_NOTE + (" The emulator bills nothing." if simulated else ""),
        simulated=simulated,
        next_step=next_step,
    )


def _status_result(state: BatchState, wait: int) -> GetBatchResult:
    record = state.record
    counts = state.backend_counts
    if state.still_running:
        lost = state.unresolved.get("lost")
        looking = (
            f" {lost} lost answer(s) are being looked for on the backend (never resent)." if lost else ""
        )
        next_step = f"Still running.{looking} Call get_batch(batch_id='{record.local_id}', wait_seconds={wait}) again."
    elif state.unresolved:
        unresolved = ", ".join(
            f"{count} {what.replace('_', ' ')}" for what, count in state.unresolved.items()
        )
        next_step = (
            f"Not done: {unresolved}. Lost answers are looked for on the backend (never resent) and "
            f"missing files fetched again: call get_batch(batch_id='{record.local_id}', wait_seconds={wait})."
        )
    elif state.totals.get("failed"):
        next_step = (
            "Done. Completed items are in files; failed items carry error.code — rephrase their prompts "
            "and generate them again (or batch just those)."
        )
    else:
        next_step = "Done. Every completed item's MP4 is at files.video."
    return GetBatchResult(
        batch_id=record.local_id,
        backend_batch_id=record.id,
        mode=record.mode,
        status=record.status,
        items={custom_id: BatchItemView.of(custom_id, rec) for custom_id, rec in state.items.items()},
        totals=state.totals,
        backend_counts=counts.model_dump(include={"total", "completed", "failed"}) if counts else None,
        estimated_total_usd=record.estimated_cost_usd,
        cost_so_far_usd=state.cost_so_far,
        still_running=state.still_running,
        problems=state.problems,
        note=record.note,
        next_step=next_step,
    )


def _reporter(ctx: Context[AppState]) -> Callable[[BatchState, float], Awaitable[None]]:
    best = 0.0

    async def report(state: BatchState, elapsed: float) -> None:
        nonlocal best
        total = max(1, len(state.items))
        finished = sum(1 for r in state.items.values() if r.status in _FINAL)
        percent = sum(100 if r.status in _FINAL else r.progress for r in state.items.values()) / total
        if state.backend_counts is not None:
            done = state.backend_counts.completed + state.backend_counts.failed
            percent = max(percent, 100 * done / total)
            finished = max(finished, done)
        # Progress must never go backwards, whichever source moved last.
        best = max(best, percent)
        totals = ", ".join(f"{count} {status}" for status, count in sorted(state.totals.items()))
        await ctx.report_progress(best, 100, f"{finished}/{total} finished: {totals} ({elapsed:.0f}s)")

    return report
