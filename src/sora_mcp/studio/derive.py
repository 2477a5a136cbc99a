"""Videos made from other videos: extensions, edits (or remixes), and clips that begin on another
clip's frame.

Each follows the Studio's money contract: every local check first (limits are counted along the
registry's lineage, so a request the service would refuse is never sent), then one billable
request through `Studio.submit` — intent before, id after, never retried.

`FALLBACKS` is the one place that says what is done when a backend lacks an endpoint (as its
profile declares, or as it showed by answering 404/405/501: `api/capabilities.py`); `attempt`
runs a call with its declared fallback.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

import anyio.to_thread

from sora_mcp import catalog
from sora_mcp.api.capabilities import Capability
from sora_mcp.api.inputs import ImageUpload
from sora_mcp.api.models import Video
from sora_mcp.errors import APIStatusError, InvalidRequest
from sora_mcp.media.images import FitMode, PreparedImage, fit_image
from sora_mcp.media.video import frame_at, probe
from sora_mcp.registry.records import CharacterRecord, Relation, VideoRecord
from sora_mcp.studio.characters import reference_note, resolve_characters
from sora_mcp.studio.lineage import ExtensionBudget, plan_extension
from sora_mcp.studio.planning import ClipPlan, check_prompt, check_seconds, check_video_id, plan_clip
from sora_mcp.studio.studio import Studio

if TYPE_CHECKING:  # Pillow loads on first use (the server starts without it)
    from PIL import Image

T = TypeVar("T")


@dataclass(frozen=True)
class Fallback:
    """What is done instead when the backend lacks `capability`."""

    capability: Capability
    instead: str
    """The substitute, as the tool's answer names it ("Sent as {instead} because …")."""


FALLBACKS: Mapping[Capability, Fallback] = MappingProxyType(
    {
        # A remix re-renders the source with the new prompt: the nearest thing to an edit.
        "edits": Fallback("edits", instead="a remix"),
        # Without remix either: a new clip from the source's first frame and the instruction.
        "remix": Fallback("remix", instead="a new clip from the source's first frame"),
        # The source's last frame starts a new clip; the two are stitched here (assets.stitch).
        "extensions": Fallback("extensions", instead="a new clip from the last frame, stitched here"),
    }
)


async def attempt(
    studio: Studio,
    capability: Capability,
    primary: Callable[[], Awaitable[T]],
    fallback: Callable[[str], Awaitable[T]],
) -> T:
    """`primary()` while the backend has `capability`; otherwise — declared missing, learned
    missing earlier, or shown missing by `primary`'s own refusal (nothing was started then) —
    `fallback(why)`, where `why` is the sentence for the tool's answer."""
    declared = FALLBACKS[capability]
    capabilities = studio.client.capabilities
    if capabilities.has(capability):
        try:
            return await primary()
        except APIStatusError:
            if capabilities.has(capability):
                raise  # a refusal of this request, not a missing endpoint
    reason = capabilities.why_missing(capability)
    return await fallback(f"Sent as {declared.instead} because {reason}.")


@dataclass(frozen=True)
class Derived:
    """A job started from a source video."""

    record: VideoRecord
    relation: Relation
    estimated_cost_usd: float
    estimated_seconds: float
    """Typical time until the job completes."""
    budget: ExtensionBudget | None = None
    """For an extension: what is left after it."""
    fallback: str | None = None
    """When the backend lacked the endpoint: what was done instead, and why (one sentence)."""


async def completed_source(studio: Studio, key: str) -> VideoRecord:
    """The record of a completed video, refreshed from the backend unless already completed.

    Raises:
        InvalidRequest: unknown id, or the video is not completed (the message says what to do).
    """
    record = studio.registry.get_video(check_video_id(key))
    if record is None or record.status != "completed":
        # An id unknown here is adopted from the backend if it knows it.
        record = await studio.refresh(record.local_id if record else key, auto_download=False)
    if record.status != "completed" or record.id is None:
        advice = (
            "A failed or deleted video cannot be used; make a new one."
            if record.status in ("failed", "deleted")
            else "Call get_video with wait_seconds until it completes, then try again."
        )
        raise InvalidRequest(
            f"Video {key} is {record.status}; only a completed video can be used as a source. {advice}",
            param="video_id",
            code="not_completed",
        )
    return record


# Over 60 lines: every lineage check before the one billable request, in order, plus its fallback.
async def extend(
    studio: Studio, key: str, *, prompt: str, seconds: int, idempotency_key: str | None = None
) -> Derived:
    """Continue a completed video by `seconds`; the new video's file is the stitched whole.

    The per-source limits are checked from the registry before any request (even the status
    refresh), then again with the refreshed source.

    Raises:
        InvalidRequest: bad prompt or seconds, a limit reached, the source not completed, or a
            backend without extensions.
        OutcomeUnknown / APIError: as `Studio.submit`.
    """
    text = check_prompt(prompt)
    check_seconds(seconds)
    known = studio.registry.get_video(check_video_id(key))
    if known is not None:
        plan_extension(studio.registry, known, seconds)
    source = await completed_source(studio, key)
    budget = plan_extension(studio.registry, source, seconds)
    assert source.id is not None  # completed_source guarantees a backend id
    source_id = source.id
    cost = catalog.estimate_cost(source.model, source.size, seconds)
    what = f"extend {source_id} by {seconds} s"
    studio.check_budget(cost, what, key=idempotency_key)
    estimate = studio.estimate_render(source.model, seconds)

    async def native() -> Derived:
        intent = studio.new_intent(
            model=source.model,
            prompt=text,
            size=source.size,
            seconds=budget.total_seconds,
            relation="extension",
            parent_id=source_id,
            character_ids=list(source.character_ids),
            estimated_cost_usd=cost,
            note=f"Extends {source_id} by {seconds} s; the file is the stitched whole.",
        )
        record = await _send(
            studio,
            intent,
            lambda: studio.client.extend_video(source_id, prompt=text, seconds=seconds),
            what=what,
            key=idempotency_key,
            tool="extend",
        )
        return Derived(record, "extension", cost, estimate, budget=budget, fallback=record.fallback)

    async def chained(why: str) -> Derived:
        fallback = (
            f"{why} The new {seconds} s clip starts on the last frame of {source_id} and is joined to "
            "it on this machine; the motion may not carry across the seam."
        )
        frame, _ = await frame_reference(studio, source.local_id, second=None, size=source.size, fit="crop")
        intent = studio.new_intent(
            model=source.model,
            prompt=text,
            size=source.size,
            seconds=budget.total_seconds,
            relation="extension",
            parent_id=source_id,
            image_reference=frame.source,
            estimated_cost_usd=cost,
            note=f"Extends {source_id} by {seconds} s: a new clip from its last frame, stitched here.",
            fallback=fallback,
            stitch_onto=source.local_id,
        )
        record = await _send(
            studio,
            intent,
            lambda: _new_clip(studio, source, text, seconds, frame),
            what=what,
            key=idempotency_key,
            tool="extend",
        )
        return Derived(record, "extension", cost, estimate, budget=budget, fallback=record.fallback)

    return await attempt(studio, "extensions", native, chained)


async def _new_clip(
    studio: Studio, source: VideoRecord, prompt: str, seconds: int, frame: PreparedImage
) -> Video:
    """One billable create in the source's model and size, starting on `frame`."""
    upload = ImageUpload(content=frame.content, filename=frame.filename, mime_type=frame.mime_type)
    return await studio.client.create_video(
        prompt=prompt, model=source.model, size=source.size, seconds=seconds, input_reference=upload
    )


# Over 60 lines: the native edit, its remix fallback and its first-frame fallback side by side.
async def edit(studio: Studio, key: str, *, prompt: str, idempotency_key: str | None = None) -> Derived:
    """Change a completed video as `prompt` says: `POST /videos/edits`, or a remix when the
    backend has no edits endpoint (its profile says so, or it answered 404/405 — a definite
    refusal, so nothing was started — which is remembered for the session).

    Raises:
        InvalidRequest: bad prompt, the source not completed, neither edits nor remix offered.
        OutcomeUnknown / APIError: as `Studio.submit`.
    """
    text = check_prompt(prompt)
    source = await completed_source(studio, key)
    assert source.id is not None  # completed_source guarantees a backend id
    source_id = source.id
    cost = catalog.estimate_cost(source.model, source.size, source.seconds)
    estimate = studio.estimate_render(source.model, source.seconds)
    what = f"edit of {source_id} ({source.seconds} s)"
    studio.check_budget(cost, what, key=idempotency_key)

    async def send(rec: VideoRecord, request: Callable[[], Awaitable[Video]]) -> VideoRecord:
        return await _send(studio, rec, request, what=what, key=idempotency_key, tool="edit")

    def intent(relation: Relation) -> VideoRecord:
        return studio.new_intent(
            model=source.model,
            prompt=text,
            size=source.size,
            seconds=source.seconds,
            relation=relation,
            parent_id=source_id,
            character_ids=list(source.character_ids),
            estimated_cost_usd=cost,
        )

    async def as_edit() -> Derived:
        record = await send(intent("edit"), lambda: studio.client.edit_video(source_id, prompt=text))
        return Derived(
            record=record,
            relation=record.relation,
            estimated_cost_usd=cost,
            estimated_seconds=estimate,
            fallback=record.fallback,
        )

    async def as_remix(why_edit: str) -> Derived:
        async def remix() -> Derived:
            record = await send(intent("remix"), lambda: studio.client.remix_video(source_id, prompt=text))
            return Derived(
                record=record,
                relation="remix",
                estimated_cost_usd=cost,
                estimated_seconds=estimate,
                fallback=why_edit,
            )

        async def as_new_clip(why_remix: str) -> Derived:
            fallback = (
                f"{why_edit} {why_remix} It starts on the first frame of {source_id} with your "
                "instruction: an approximation — motion and details will differ."
            )
            frame, _ = await frame_reference(
                studio, source.local_id, second=0.0, size=source.size, fit="crop"
            )
            approximate = intent("edit").model_copy(
                update={"image_reference": frame.source, "fallback": fallback, "character_ids": []}
            )
            record = await send(approximate, lambda: _new_clip(studio, source, text, source.seconds, frame))
            return Derived(record, "edit", cost, estimate, fallback=fallback)

        return await attempt(studio, "remix", remix, as_new_clip)

    return await attempt(studio, "edits", as_edit, as_remix)


async def _send(
    studio: Studio,
    intent: VideoRecord,
    request: Callable[[], Awaitable[Video]],
    *,
    what: str,
    key: str | None,
    tool: str,
) -> VideoRecord:
    """Reserve `intent` (within the spending limits, under the idempotency `key`) and send it —
    or, when the key's first call recorded its job already, return that record and send nothing.
    A fallback after a definite refusal reserves again: the refused intent was discarded, which
    frees its key."""
    reservation = studio.reserve([intent], what, key=key, tool=tool)
    if not reservation.replayed:
        return await studio.submit(intent, request)
    if not reservation.records:
        raise InvalidRequest(
            f"idempotency_key {key!r} was used by a call that sent nothing and is still being "
            "recorded; call again in a moment, or use a new key for a new request.",
            param="idempotency_key",
        )
    return reservation.records[0]


async def plan_generation(
    studio: Studio,
    *,
    prompt: str,
    model: str,
    size: str,
    seconds: int,
    variations: int = 1,
    image: str | None = None,
    fit: FitMode = "crop",
    characters: Sequence[str] = (),
    start_from: str | None = None,
    start_from_second: float | None = None,
) -> ClipPlan:
    """A generation plan with its characters resolved and its first frame prepared.

    The catalogue and character checks come first and need no request; `start_from` may then
    fetch the source's status and file (free reads).

    Raises:
        InvalidRequest: any check failed; the message says what is allowed.
    """
    plan = plan_clip(
        prompt=prompt,
        model=model,
        size=size,
        seconds=seconds,
        variations=variations,
        strict=studio.client.profile.strict_models,
    )
    if image is not None and start_from is not None:
        raise InvalidRequest(
            "Give image or start_from, not both: each sets the first frame.",
            param="start_from",
            code="conflicting_arguments",
        )
    if start_from_second is not None and start_from is None:
        raise InvalidRequest("start_from_second needs start_from (the video to take the frame from).")
    chosen = resolve_characters(
        studio.registry, characters, plan.prompt, backend=studio.settings.backend_label
    )
    native = tuple(c.id for c in chosen if c.reference is None)
    if native:
        plan = replace(plan, characters=native)
    by_frame = [c for c in chosen if c.reference is not None]
    if by_frame:
        return await _with_reference_frame(
            studio, plan, by_frame, size, fit, other_first_frame=image or start_from
        )
    if image is not None:
        plan = replace(plan, image=await _first_frame(studio, image, size, fit))
    elif start_from is not None:
        frame, source = await frame_reference(
            studio, start_from, second=start_from_second, size=size, fit=fit
        )
        plan = replace(plan, image=frame, parent_id=source.id, note=f"Starts on the {frame.source}.")
    return plan


async def _with_reference_frame(
    studio: Studio,
    plan: ClipPlan,
    chosen: Sequence[CharacterRecord],
    size: str,
    fit: FitMode,
    *,
    other_first_frame: str | None,
) -> ClipPlan:
    """The plan starting on the reference frame of the one character kept as a frame."""
    if len(chosen) > 1 or other_first_frame is not None:
        raise InvalidRequest(
            "A character kept as a reference frame sets the clip's first frame, so a clip can use one "
            "such character and no image or start_from.",
            param="characters",
            code="reference_frame_conflict",
        )
    character = chosen[0]
    assert character.reference is not None
    reference = Path(character.reference)
    width, height = catalog.parse_size(size)
    try:
        data = await anyio.Path(reference).read_bytes()
    except OSError as exc:
        raise InvalidRequest(
            f"The reference frame of {character.name!r} is gone ({reference}); make the character again.",
            param="characters",
        ) from exc
    frame = fit_image(data, width, height, fit, source=f"reference frame of character {character.name}")
    return replace(plan, image=frame, fallback=reference_note(character))


async def _first_frame(studio: Studio, image: str, size: str, fit: FitMode) -> PreparedImage:
    """The `image` argument prepared as a first frame; every refusal names that argument."""
    try:
        return await studio.prepare_image(image, size, fit)
    except InvalidRequest as exc:
        raise InvalidRequest(str(exc), param="image", code=exc.code or "invalid_image") from exc
    except (
        ValueError,
        OSError,
    ) as exc:  # a malformed URL (bad IPv6 host, port out of range), a path the OS refuses
        raise InvalidRequest(
            f"The image {image[:80]!r} cannot be used: {exc}.", param="image", code="invalid_image"
        ) from exc


async def frame_reference(
    studio: Studio, key: str, *, second: float | None, size: str, fit: FitMode
) -> tuple[PreparedImage, VideoRecord]:
    """A frame of a completed video (its last, or the one at `second`) fitted to `size`, to
    serve as the first frame of a new clip. Downloads the video first if needed.

    Raises:
        InvalidRequest: the video is not completed, or `second` lies outside it.
    """
    if second is not None and second < 0:
        raise InvalidRequest("start_from_second must be 0 or more.", param="start_from_second")
    source = await studio.ensure_downloaded(key)
    path = Path(source.files["video"])
    width, height = catalog.parse_size(size)

    def grab() -> PreparedImage:
        length = probe(path).seconds
        if second is not None and second > length:
            raise InvalidRequest(
                f"start_from_second={second:g} is past the end of {source.id} ({length:.2f} s); "
                "leave it out to use the last frame.",
                param="start_from_second",
            )
        buffer = io.BytesIO()
        frame: Image.Image = frame_at(path, second)
        frame.save(buffer, format="PNG")
        where = "last frame" if second is None else f"frame at {second:g} s"
        return fit_image(buffer.getvalue(), width, height, fit, source=f"{where} of {source.id}")

    try:
        return await anyio.to_thread.run_sync(grab), source
    except ValueError as exc:
        raise InvalidRequest(f"The frame of {source.id} cannot be read: {exc}", param="start_from") from exc
