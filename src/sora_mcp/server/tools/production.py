"""Production tools: extend, edit, create_character, list_characters, delete_video.

Like `videos.py`, each tool validates, calls the domain (`derive`, `characters`, `deletion`) and
shapes the answer; `table.py` registers them and turns domain errors into tool errors.
"""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from pydantic import Field

from sora_mcp import catalog
from sora_mcp.errors import SoraError
from sora_mcp.registry.records import UNFINISHED_STATUSES, VideoRecord
from sora_mcp.server.common import (
    ClientRoots,
    IdempotencyKey,
    Seconds,
    VideoId,
    WaitSeconds,
    progress_reporter,
    recommended_wait,
    studio_of,
    wait_limit,
)
from sora_mcp.server.common import idempotency_key as key_for
from sora_mcp.server.confirm import (
    CharacterApproval,
    ConfirmToken,
    EditApproval,
    ExtendApproval,
    require_consent,
)
from sora_mcp.server.schemas import (
    CharacterView,
    CreateCharacterResult,
    DeleteVideoResult,
    EditResult,
    ExtendResult,
    ExtensionBudgetView,
    ListCharactersResult,
    VideoView,
)
from sora_mcp.server.state import AppState
from sora_mcp.studio.characters import DEFAULT_CLIP_SECONDS, create_character
from sora_mcp.studio.deletion import delete_video
from sora_mcp.studio.derive import Derived, edit, extend
from sora_mcp.studio.studio import Studio


async def extend_tool(
    video_id: Annotated[
        str, Field(description="A COMPLETED video to continue (generate, edit or extend result).")
    ],
    prompt: Annotated[
        str,
        Field(description="Only the NEXT beat after the last frame; do not re-describe the scene."),
    ],
    ctx: Context[AppState],
    approval: ExtendApproval,
    seconds: Seconds = 4,
    wait_seconds: WaitSeconds = 0,
    confirm_token: ConfirmToken = None,
    idempotency_key: IdempotencyKey = None,
) -> ExtendResult:
    """Continue a completed video: a NEW video whose file is the whole stitched sequence; the source
    is unchanged. LIMITS (checked first): 6 extensions and 120 s per original; no characters or
    image. COST: the new seconds only. NEXT: get_video(new id, wait_seconds=40), again while still
    running; extend the new id to go on; when the budget is spent, generate(start_from=<id>).
    """
    require_consent(approval)
    studio = studio_of(ctx)
    derived = await extend(
        studio, video_id, prompt=prompt, seconds=seconds, idempotency_key=key_for(ctx, idempotency_key)
    )
    record, problem = await _maybe_wait(studio, ctx, derived.record, wait_seconds)
    assert derived.budget is not None  # extend always reports its budget
    return ExtendResult(
        video=VideoView.of(record),
        budget=ExtensionBudgetView.of(derived.budget),
        estimated_cost_usd=derived.estimated_cost_usd,
        estimated_seconds=derived.estimated_seconds,
        simulated=studio.settings.is_emulator,
        fallback=derived.fallback,
        problem=problem,
        next_step=_follow(record, derived, recommended_wait(studio.settings), problem),
    )


async def edit_tool(
    video_id: Annotated[str, Field(description="A COMPLETED video to change; it stays unchanged.")],
    prompt: Annotated[
        str,
        Field(
            description="ONE change plus what must stay, e.g. 'Make the jacket red; keep framing and light.'"
        ),
    ],
    ctx: Context[AppState],
    approval: EditApproval,
    wait_seconds: WaitSeconds = 0,
    confirm_token: ConfirmToken = None,
    idempotency_key: IdempotencyKey = None,
) -> EditResult:
    """Make a changed copy of a completed video from an instruction (a remix where the backend
    has no edits; the answer says so). One change per edit; chain edits for more. COST and TIME:
    a new clip of the source's length. NEXT: get_video(new id, wait_seconds=40), again while
    still running.
    """
    require_consent(approval)
    studio = studio_of(ctx)
    derived = await edit(studio, video_id, prompt=prompt, idempotency_key=key_for(ctx, idempotency_key))
    record, problem = await _maybe_wait(studio, ctx, derived.record, wait_seconds)
    return EditResult(
        video=VideoView.of(record),
        relation=derived.relation,
        fallback=derived.fallback,
        estimated_cost_usd=derived.estimated_cost_usd,
        estimated_seconds=derived.estimated_seconds,
        simulated=studio.settings.is_emulator,
        problem=problem,
        next_step=_follow(record, derived, recommended_wait(studio.settings), problem),
    )


async def create_character_tool(
    name: Annotated[
        str,
        Field(
            min_length=1,
            max_length=catalog.CHARACTER_NAME_MAX_CHARS,
            description="A short distinctive name (1–80 chars). Prompts must contain it verbatim.",
        ),
    ],
    ctx: Context[AppState],
    client_roots: ClientRoots,
    approval: CharacterApproval,
    clip_path: Annotated[
        str | None,
        Field(description="A local 2–4 s MP4 of the character (output or input folder). This OR video_id."),
    ] = None,
    video_id: Annotated[
        str | None,
        Field(description="A completed video made here to cut the clip from. Give this OR clip_path."),
    ] = None,
    start_seconds: Annotated[
        float, Field(ge=0, description="With video_id: where the clip starts in that video.")
    ] = 0.0,
    seconds: Annotated[
        float,
        Field(
            ge=catalog.CHARACTER_CLIP_MIN_SECONDS,
            le=catalog.CHARACTER_CLIP_MAX_SECONDS,
            description="With video_id: how long a clip to cut (2–4 s).",
        ),
    ] = DEFAULT_CLIP_SECONDS,
    idempotency_key: IdempotencyKey = None,
    confirm_token: ConfirmToken = None,
) -> CreateCharacterResult:
    """Make a reusable NON-HUMAN character (animal, creature, mascot, object; human likeness is
    refused) from a 2–4 s clip, in the aspect ratio of the videos that will use it; the clip is
    measured first. COST: billable on some backends. NEXT: generate(prompt with the NAME
    verbatim, characters=[name]).
    """
    require_consent(approval)
    studio = studio_of(ctx)
    outcome = await create_character(
        studio,
        name=name,
        clip_path=clip_path,
        video_id=video_id,
        start_seconds=start_seconds,
        seconds=seconds,
        idempotency_key=key_for(ctx, idempotency_key),
    )
    character = outcome.record
    next_step = f"Use it: generate(prompt='… {character.name} …', characters=['{character.name}'])."
    if outcome.replayed:
        next_step = f"This idempotency_key was already used: this is that call's character, nothing was sent. {next_step}"
    return CreateCharacterResult(
        character=CharacterView.of(character),
        clip_path=str(outcome.clip),
        clip_seconds=round(outcome.clip_seconds, 3),
        next_step=next_step,
    )


async def list_characters_tool(ctx: Context[AppState]) -> ListCharactersResult:
    """List every character made so far, newest first. FREE (also the sora://characters
    resource)."""
    studio = studio_of(ctx)
    characters = studio.registry.list_characters()
    here = studio.settings.backend_label
    return ListCharactersResult(
        characters=[CharacterView.of(c) for c in characters],
        count=len(characters),
        next_step=f"Characters work only on the backend they were made on (this one: {here}); pass "
        "names to generate(characters=[…]) and write each name in the prompt.",
    )


async def delete_video_tool(
    video_id: VideoId,
    ctx: Context[AppState],
    delete_files: Annotated[
        bool, Field(description="Also remove the downloaded files from this machine (default: keep).")
    ] = False,
) -> DeleteVideoResult:
    """Delete a video on the backend and mark it 'deleted' in the registry (record and lineage
    stay listed; local files are kept unless delete_files=true).

    FREE. Cannot be undone: no more edits or extensions of it. Ask the user before deleting
    anything they did not ask to delete.
    """
    outcome = await delete_video(studio_of(ctx), video_id, delete_files=delete_files)
    remote_said = {
        "deleted": "Deleted on the backend and marked in the registry.",
        "already_gone": "The backend no longer had it; marked deleted in the registry.",
        "unsupported": "This backend cannot delete videos; it was only marked deleted in the registry.",
        "no_backend_id": "It never got a backend id; marked deleted in the registry.",
        "already_deleted": "It was already deleted.",
    }[outcome.remote]
    kept = " Local files were kept." if outcome.files_kept else ""
    return DeleteVideoResult(
        video=VideoView.of(outcome.record),
        remote=outcome.remote,
        files_deleted=outcome.files_deleted,
        files_kept=outcome.files_kept,
        next_step=remote_said + kept,
    )


async def _maybe_wait(
    studio: Studio, ctx: Context[AppState], record: VideoRecord, wait_seconds: int
) -> tuple[VideoRecord, str | None]:
    """The record after waiting, and what went wrong while following it. The job was paid
    for: a failure here must not hide its id behind a tool error (the model would retry)."""
    wait = wait_limit(studio.settings, wait_seconds)
    if wait <= 0:
        return record, None
    try:
        (record,) = await studio.wait([record.local_id], timeout=wait, on_progress=progress_reporter(ctx))
    except SoraError as exc:
        latest = studio.registry.get_video(record.local_id) or record
        return (
            latest,
            f"The job {latest.id or latest.local_id} started and is billed, but following it failed: {exc}",
        )
    return record, None


def _follow(record: VideoRecord, derived: Derived, wait: int, problem: str | None = None) -> str:
    vid = record.id or record.local_id
    if problem is not None:
        return (
            f"Do not start it again: call get_video('{vid}', wait_seconds={wait}) later to follow it "
            f"(estimated cost ${derived.estimated_cost_usd:.2f})."
        )
    if record.status == "completed" and "video" not in record.files:
        return f"It completed but its file is not saved yet ({record.note}); call download('{vid}')."
    if record.status in UNFINISHED_STATUSES:
        return f"Call get_video('{vid}', wait_seconds={wait}), again while still_running is true."
    if record.status == "completed":
        more = (
            f" {derived.budget.extensions_left} extension(s) and {derived.budget.seconds_left} s left."
            if derived.budget
            else ""
        )
        return f"Done: files.video is the MP4.{more}"
    return f"It ended {record.status} ({record.error_code}): rephrase and try again."
