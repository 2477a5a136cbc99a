"""The domain: start clips, follow them, fetch their files — with nothing lost and nothing paid twice.

`Studio` is what the MCP tools call. It knows the catalogue, the registry and the wire client, and
nothing about MCP. Its contract with money: validate everything before the first request; write the
intent to the registry before a billable POST and the backend's id right after; never resubmit a
request whose outcome is unknown.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2

from sora_mcp import catalog
from sora_mcp.api.capabilities import ALL_CAPABILITIES, Capability
from sora_mcp.api.client import VideosClient
from sora_mcp.api.inputs import ImageUpload
from sora_mcp.api.models import Variant, Video
from sora_mcp.api.polling import wait_for_video
from sora_mcp.clock import Clock
from sora_mcp.config import Settings
from sora_mcp.errors import (
    APIError,
    InvalidRequest,
    NotFoundError,
    OutcomeUnknown,
    SoraError,
)
from sora_mcp.media.images import FitMode, PreparedImage, prepare_image
from sora_mcp.registry.capabilities import CapabilityMemory
from sora_mcp.registry.interface import RegistryStore, Reservation
from sora_mcp.registry.records import UNFINISHED_STATUSES, VideoRecord, VideoStatus
from sora_mcp.studio.budget import Budget, check_budget, reserve
from sora_mcp.studio.claims import FOLLOW_GRACE_LEASES, FleetClaims
from sora_mcp.studio.downloads import Downloads, has_file
from sora_mcp.studio.lost import LostRequests
from sora_mcp.studio.planning import ClipPlan, check_prompt, check_seconds, check_video_id, plan_clip
from sora_mcp.studio.reconcile import needs_reconciling
from sora_mcp.studio.submission import UnrecordedJob, submit_once
from sora_mcp.studio.tracking import absorb, adopt

__all__ = [
    "ClipPlan",
    "GenerateOutcome",
    "Studio",
    "check_prompt",
    "check_seconds",
    "check_video_id",
    "plan_clip",
]

log = logging.getLogger(__name__)

VARIANTS: tuple[Variant, ...] = ("video", "thumbnail", "spritesheet")
# How old an answer may be and still stand for a wait's first poll.
_FRESH_SECONDS = 1.0
WaitCallback = Callable[[list[VideoRecord], float], Awaitable[None]]


# How long a key the server derived itself (no key from the client) is remembered: long enough
# for a transport's retries of the same request, short enough that running the same script
# again tomorrow starts new jobs.
DERIVED_KEY_WINDOW = 600.0
DERIVED_KEY_PREFIX = "derived:"


@dataclass
class GenerateOutcome:
    plan: ClipPlan
    records: list[VideoRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    replayed: bool = False
    """The idempotency key was used before: these are the first call's records; nothing was sent."""


class Studio:
    """Video production on one backend, remembered in one registry."""

    def __init__(
        self,
        *,
        settings: Settings,
        client: VideosClient,
        registry: RegistryStore,
        clock: Clock,
        fetch_http: httpx2.AsyncClient | None = None,
        emulator_speed: float | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.registry = registry
        self.clock = clock
        self._fetch_http = fetch_http
        self.downloads = Downloads(
            client=client, registry=registry, clock=clock, output_dir=settings.output_dir
        )
        self.budget = Budget(daily_usd=settings.budget_daily_usd, per_call_usd=settings.budget_per_call_usd)
        self.learned = CapabilityMemory(settings.registry_dir)
        """Optional endpoints this backend turned out to lack (or to ignore), kept per base URL
        across sessions: loaded into the client's capabilities, and what it learns is kept."""
        for capability, learned in self.learned.missing(self.backend_key).items():
            if capability in ALL_CAPABILITIES:
                client.capabilities.note(capability, learned.why)
        client.capabilities.on_learn = lambda capability, why: self.learned.learn(
            self.backend_key, capability, why, clock.now()
        )
        self.claims = FleetClaims(registry, lease_seconds=settings.batch_lease_seconds)
        """This server's claims on background work shared with the others of a fleet."""
        self.lost = LostRequests(
            client=client, registry=registry, clock=clock, claims=self.claims, backend=settings.backend_label
        )
        """Requests without an id: in flight here, lost, or started but not recorded yet."""
        # Estimates shown to the model must match what will really happen: the emulator renders
        # `speed` times faster than the service it imitates.
        self._speed = emulator_speed if settings.is_emulator and emulator_speed else 1.0
        # The latest answer about each job (clock time, video, poll-after hint): a wait that
        # starts right after a create or a refresh takes it as its first poll instead of asking
        # the backend the same question again a few milliseconds later.
        self._answers: dict[str, tuple[float, Video, float | None]] = {}

    # ---- capabilities ---------------------------------------------------------------------

    @property
    def backend_key(self) -> str:
        """Whose capabilities these are: the base URL (the emulator: its profile)."""
        if self.settings.is_emulator:
            return f"emulator:{self.client.profile.name}"
        return self.settings.base_url

    def lacks(self, capability: Capability) -> str | None:
        """Why this backend cannot do `capability` (its profile says so, or it showed it, now
        or in an earlier session), or None when it is worth trying."""
        return self.client.capabilities.why_missing(capability)

    def learn(self, capability: Capability, why: str) -> str:
        """Remember (for this base URL, across sessions) that the backend lacks `capability`."""
        log.info("learned that %s lacks %s: %s", self.backend_key, capability, why)
        self.client.capabilities.note(capability, why)
        return why

    # ---- planning -------------------------------------------------------------------------

    def check_budget(self, cost: float, what: str, *, key: str | None = None) -> None:
        """Refuse, before anything is sent, a call that would break the spending limits.

        With an idempotency `key`, only the per-call limit: the day's room is then decided by
        `reserve`, which looks for the key's earlier call first — a retry of the call that spent
        the last of the budget must still find its job rather than be refused.

        Raises:
            BudgetExceeded: with the figures and what is left.
        """
        check_budget(self.budget, self.registry, self.clock, cost, what, daily=key is None)

    def reserve(
        self, intents: list[VideoRecord], what: str, *, key: str | None = None, tool: str = ""
    ) -> Reservation:
        """Record `intents` as one unit if their cost fits the spending limits — checked and
        written in one registry transaction, so concurrent calls never overspend together — or
        find the records an earlier call with the same idempotency `key` made (`replayed`: then
        send nothing). A key the server derived itself counts for `DERIVED_KEY_WINDOW` seconds.

        Raises:
            BudgetExceeded: nothing was recorded.
        """
        return reserve(
            self.budget,
            self.registry,
            self.clock,
            intents,
            what,
            key=key,
            key_since=self.key_since(key),
            tool=tool,
        )

    def key_since(self, key: str | None) -> float | None:
        """Since when a use of the idempotency `key` counts: a key the server derived itself only
        for `DERIVED_KEY_WINDOW` seconds, a client's key forever."""
        derived = key is not None and key.startswith(DERIVED_KEY_PREFIX)
        return self.clock.now() - DERIVED_KEY_WINDOW if derived else None

    def release(self, intents: list[VideoRecord]) -> None:
        """Give back the reservation of every intent among these that was never sent."""
        for intent in intents:
            current = self.registry.get_video(intent.local_id)
            if current is not None and current.status == "pending" and current.id is None:
                self.registry.discard_intent(intent.local_id)

    def estimate_seconds(self, plan: ClipPlan) -> float:
        return round(plan.render_seconds / self._speed, 1)

    def estimate_render(self, model: str, seconds: int) -> float:
        """Typical seconds until a job rendering `seconds` of new output completes here."""
        return round(catalog.estimate_render_seconds(model, seconds) / self._speed, 1)

    async def prepare_image(self, ref: str, size: str, fit: FitMode = "crop") -> PreparedImage:
        width, height = catalog.parse_size(size)
        roots = [self.settings.output_dir, *self.settings.input_roots]
        try:
            return await prepare_image(ref, width, height, fit, roots=roots, http=self._fetch_http)
        except InvalidRequest as exc:
            exc.param = "image"  # the tool argument at fault, whatever part of the reference failed
            raise

    # ---- generate -------------------------------------------------------------------------

    async def generate(self, plan: ClipPlan, *, idempotency_key: str | None = None) -> GenerateOutcome:
        """Start `plan.variations` jobs, one POST each, recording intent before and id after.

        A definite rejection of the first job raises (nothing was spent). Later failures are
        reported in `errors` so ids already started are never lost behind an exception.
        """
        what = f"generate ({plan.variations} × {plan.seconds} s {plan.model})"
        self.check_budget(plan.total_cost, what, key=idempotency_key)
        # Every variation is reserved against the budget as one unit, as "pending" (not sent);
        # the ones not sent in the end are released.
        intents = [self._intent(plan, status="pending") for _ in range(plan.variations)]
        reservation = self.reserve(intents, what, key=idempotency_key, tool="generate")
        if reservation.replayed:
            return GenerateOutcome(plan=plan, records=list(reservation.records), replayed=True)
        outcome = GenerateOutcome(plan=plan)
        try:
            for index, intent in enumerate(intents):
                try:
                    outcome.records.append(await self.submit(intent, lambda: self._create(plan)))
                except OutcomeUnknown as exc:
                    # The job may exist and be billed: the record (status unknown, its cost at
                    # risk) is part of the answer, and it is looked for without anyone asking.
                    outcome.records.append(self.registry.get_video(intent.local_id) or intent)
                    outcome.errors.append(str(exc))
                    break  # something is wrong with the backend; do not spend more
                except UnrecordedJob as exc:
                    outcome.records.append(exc.record)
                    outcome.errors.append(str(exc))
                    break
                except APIError as exc:
                    if index == 0:
                        raise
                    outcome.errors.append(f"variation {index + 1}: {exc}")
                    break
        finally:
            self.release(intents)
        return outcome

    def _intent(self, plan: ClipPlan, *, status: VideoStatus) -> VideoRecord:
        return self.new_intent(
            model=plan.model,
            prompt=plan.prompt,
            size=plan.size,
            seconds=plan.seconds,
            image_reference=plan.image.source if plan.image else None,
            estimated_cost_usd=plan.cost_per_clip,
            character_ids=list(plan.characters),
            parent_id=plan.parent_id,
            note=plan.note,
            status=status,
            fallback=plan.fallback,
        )

    async def _create(self, plan: ClipPlan) -> Video:
        upload = (
            ImageUpload(
                content=plan.image.content, filename=plan.image.filename, mime_type=plan.image.mime_type
            )
            if plan.image
            else None
        )
        return await self.client.create_video(
            prompt=plan.prompt,
            model=plan.model,
            size=plan.size,
            seconds=plan.seconds,
            input_reference=upload,
            characters=plan.characters,
        )

    def new_intent(self, **fields: Any) -> VideoRecord:
        """A fresh, not yet stored, record for a job about to be requested."""
        now = self.clock.now()
        return VideoRecord(
            local_id=uuid.uuid4().hex,
            backend=self.settings.backend_label,
            created_at=now,
            updated_at=now,
            **fields,
        )

    async def submit(
        self, intent: VideoRecord, send: Callable[[], Awaitable[Video]], *, keep_refused: bool = False
    ) -> VideoRecord:
        """Send ONE billable request under the money contract (`submission.submit_once`).

        Raises:
            OutcomeUnknown: the answer was lost; the record is left as 'unknown', never resent.
            APIError: the backend refused; the intent is discarded (no job, no charge).
            UnrecordedJob: the job started but the registry could not record it yet.
        """
        if self.registry.get_video(intent.local_id) is None:
            self.reserve([intent], f"this {intent.relation} ({intent.seconds} s {intent.model})")

        async def sent() -> Video:
            # The create answer is a status answer too: a wait right after uses it as its first poll.
            return self._answered(await send(), self.client.last_poll_after)

        with self.lost.in_flight.sending(intent.local_id):
            return await submit_once(
                self.registry, intent, sent, keep_refused=keep_refused, unrecorded=self.lost.unrecorded
            )

    # ---- follow ---------------------------------------------------------------------------

    def get_record(self, key: str) -> VideoRecord:
        check_video_id(key)
        record = self.registry.get_video(key)
        if record is None:
            raise InvalidRequest(
                f"No video {key!r} in the registry. Use list_videos to see known ids.",
                param="video_id",
                code="unknown_video",
            )
        return record

    async def refresh(
        self, key: str, *, auto_download: bool = True, download_budget: float | None = None
    ) -> VideoRecord:
        """Fetch the latest status; download the files of a newly completed video (within
        `download_budget` real seconds; `downloads.DOWNLOAD_BUDGET_SECONDS` by default)."""
        self.lost.record_unrecorded()
        record = self.registry.get_video(check_video_id(key))
        if record is None:
            record = await adopt(
                key,
                client=self.client,
                registry=self.registry,
                clock=self.clock,
                backend=self.settings.backend_label,
            )
        if record.id is None and needs_reconciling(record, self.clock.now()):
            record = await self.reconcile(record)
        if record.id is None or record.status == "deleted":
            return record
        if record.status not in UNFINISHED_STATUSES and (record.status != "completed" or has_file(record)):
            # Nothing left to learn: answered from the registry, sending nothing — unless a file
            # a completed video is owed (its thumbnail) is still missing or being fetched.
            return await self._auto_download(record) if auto_download else record
        try:
            video = self._answered(*await self.client.retrieve_video_with_hint(record.id))
        except NotFoundError:
            return self.registry.update_video(
                record.local_id, note="The backend no longer knows this id (deleted or expired there)."
            )
        record = self._absorb(record, video)
        if auto_download:
            record = await self._auto_download(record, download_budget)
        return record

    def _answered(self, video: Video, hint: float | None) -> Video:
        self._answers[video.id] = (self.clock.now(), video, hint)
        return video

    def _fresh_answer(self, video_id: str) -> tuple[Video | None, float | None]:
        """The answer about `video_id` received within the last second, used up once."""
        seen = self._answers.pop(video_id, None)
        if seen is None or self.clock.now() - seen[0] > _FRESH_SECONDS:
            return None, None
        return seen[1], seen[2]

    def _absorb(self, record: VideoRecord, video: Video) -> VideoRecord:
        return absorb(self.registry, record, video)

    # Over 60 lines: the per-video follow task and the group that runs them belong together.
    async def wait(
        self,
        keys: Sequence[str],
        *,
        timeout: float,
        on_progress: WaitCallback | None = None,
        heartbeat: float = 5.0,
        for_client: bool = True,
    ) -> list[VideoRecord]:
        """Follow several videos until each is terminal or `timeout` passes; never raises on a
        timeout — the records say what is still running. A client's wait (`for_client`) keeps
        the videos' follow claims a while after it ends: its next wait usually follows.

        Raises:
            SoraError: a video could not be followed (e.g. its first poll failed for good); the
                first such error, as itself, and the other videos stop being followed.
        """
        # A little over 60 lines: `follow` and `report` share the records and the one deadline
        # with the wait; split apart they would need all of it threaded through.
        self.lost.record_unrecorded()
        records = {k: self.get_record(k) for k in keys}
        start = self.clock.now()
        # One deadline for the whole wait: polling (clock time) and downloads (real time).
        download_deadline = anyio.current_time() + max(0.0, timeout)

        async def report() -> None:
            if on_progress is not None:
                await on_progress(list(records.values()), self.clock.now() - start)

        async def follow(key: str) -> None:
            record = records[key]
            if record.id is None:
                # In flight: wait for its answer; lost: look for its job (bounded by the wait).
                record = records[key] = await self.lost.resolve(record, timeout)
            # Without an id there is nothing to poll: return at once rather than spin. A video
            # that finished before the wait began (answered completed, or followed elsewhere)
            # still gets its files, within the wait's deadline.
            if record.id is None or record.status not in UNFINISHED_STATUSES:
                records[key] = await self._auto_download(record, download_deadline - anyio.current_time())
                return

            async def seen(video: Video, _elapsed: float) -> None:
                records[key] = self._absorb(records[key], video)
                await report()

            first, first_hint = self._fresh_answer(record.id)
            # Claimed while followed, and a while after (the client's next wait usually follows):
            # the resumers of this server and the others leave it to the client meanwhile.
            grace = self.claims.lease_seconds * FOLLOW_GRACE_LEASES if for_client else 0.0
            with self.claims.taking(f"follow:{record.local_id}", keep_for=grace):
                video = await wait_for_video(
                    self.client,
                    record.id,
                    timeout=max(0.0, start + timeout - self.clock.now()),
                    clock=self.clock,
                    on_progress=seen,
                    heartbeat=heartbeat,
                    first=first,
                    first_hint=first_hint,
                    expected_end=record.created_at + self.estimate_render(record.model, record.seconds),
                )
                budget = download_deadline - anyio.current_time()
                records[key] = await self._auto_download(self._absorb(records[key], video), budget)

        try:
            async with anyio.create_task_group() as group:
                for key in records:
                    group.start_soon(follow, key)
        except* SoraError as failed:
            # A task group wraps even one error in a group; callers (and the tools' error
            # boundary) catch SoraError, so the first one is raised as itself.
            first: SoraError | BaseExceptionGroup[SoraError] = failed.exceptions[0]
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first  # noqa: B904 - first keeps its own cause; the group stays as __context__
        await report()
        return list(records.values())

    async def reconcile(self, record: VideoRecord) -> VideoRecord:
        """Look for the job behind a request whose answer was lost (`reconcile.needs_reconciling`)
        in the backend's list of jobs — never by sending the request again (`LostRequests`).

        Returns the latest record: with the job's id when it was found (or found meanwhile by
        someone else); still without one, its note keeps the reason it was lost next to the
        latest check, so the model still reads "do not resubmit".
        """
        (found,) = await self.lost.reconcile([record])
        return found

    # ---- files ----------------------------------------------------------------------------

    async def ensure_downloaded(self, key: str) -> VideoRecord:
        """The record of a completed video whose MP4 is on this machine, fetching what is missing.

        No request is sent when the registry already knows it completed and the file exists.

        Raises:
            InvalidRequest: no such video, or it is not completed.
            AssetExpired: the backend's files are gone and no local copy exists.
        """
        record = self.get_record(key)
        if has_file(record):
            return record
        if record.status != "completed":
            record = await self.refresh(record.local_id, auto_download=False)
        if record.status != "completed":
            raise InvalidRequest(
                f"Video {key} is {record.status}, not completed; only a completed video can be used "
                "here. Call get_video with wait_seconds first.",
                param="video_id",
                code="not_completed",
            )
        if not has_file(record):
            record, _ = await self.download(record.local_id, ("video",))
        return record

    async def _auto_download(self, record: VideoRecord, budget: float | None = None) -> VideoRecord:
        return await self.downloads.automatic(record, budget=budget)

    async def download(self, key: str, variants: Sequence[Variant]) -> tuple[VideoRecord, dict[str, Path]]:
        """Fetch variants of a completed video into the output folder (atomic writes).

        A thumbnail or spritesheet the backend cannot make (no `variant`, or it answers with
        something that is not that image) is made here from the MP4, and the record's
        `fallback` says so. An extension made by the stitching fallback gets the whole: its
        source's file followed by the backend's new clip.

        Raises:
            InvalidRequest: the video is not completed.
            AssetExpired: the backend's files are gone.
        """
        return await self.downloads.fetch(self.get_record(key), variants, asked_as=key)
