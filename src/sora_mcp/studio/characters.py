"""Characters: reusable non-human subjects made from a 2–4 s clip, and used by name in prompts.

A clip is a local file (confined to the output folder and the configured input folders) or a
stretch cut from a video in the registry, keeping its frame size and so its aspect ratio. The
clip is measured before anything is sent: a wrong length is refused locally with the length
found. The upload is billable-ish and never retried (the client guarantees that).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from sora_mcp import catalog
from sora_mcp.api.models import Character
from sora_mcp.errors import APIStatusError, InvalidRequest, OutcomeUnknown, RegistryError
from sora_mcp.files import confine, safe_filename
from sora_mcp.media.video import MediaInfo, cut_clip, frame_at, probe
from sora_mcp.registry.interface import CharacterKey, RegistryStore
from sora_mcp.registry.records import CharacterRecord
from sora_mcp.studio.studio import Studio

DEFAULT_CLIP_SECONDS = 3.0
PROBE_SECONDS = 20.0
"""Longest a local clip may take to be measured (a file on a stalled network share)."""
MAX_START_SECONDS = 3600.0
# A retry finding its key's first call still uploading looks again this often, until that
# upload's timeout (plus this margin) has passed.
_KEY_POLL_SECONDS = 0.5
_UPLOAD_MARGIN_SECONDS = 5.0


@dataclass(frozen=True)
class CharacterOutcome:
    record: CharacterRecord
    clip: Path
    """The clip that was uploaded (the cut one, when cut from a video)."""
    clip_seconds: float
    replayed: bool = False
    """The idempotency key's first call made it; nothing was sent now."""


def check_name(name: str) -> str:
    """The name without surrounding blanks. Raises InvalidRequest unless 1–80 characters."""
    text = name.strip()
    if not 1 <= len(text) <= catalog.CHARACTER_NAME_MAX_CHARS:
        raise InvalidRequest(
            f"A character name must be 1–{catalog.CHARACTER_NAME_MAX_CHARS} characters; got {len(text)}. "
            "Pick a short, distinctive name: prompts must contain it verbatim.",
            param="name",
        )
    return text


def check_clip_seconds(seconds: float, what: str, *, param: str) -> None:
    """Raises InvalidRequest (with the length) unless a character clip lasts 2–4 s."""
    low, high = catalog.CHARACTER_CLIP_MIN_SECONDS, catalog.CHARACTER_CLIP_MAX_SECONDS
    if not low <= seconds <= high:
        raise InvalidRequest(
            f"{what} lasts {seconds:.2f} s; a character clip must last {low:g}–{high:g} s. Nothing was sent.",
            param=param,
            code="clip_length",
        )


def resolve_characters(
    registry: RegistryStore, refs: Sequence[str], prompt: str, *, backend: str
) -> tuple[CharacterRecord, ...]:
    """The characters named by `refs` (names or ids), checked for use in `prompt`.

    Raises:
        InvalidRequest: more than allowed, an unknown one, one made on another backend, or one
            whose name is not written verbatim in the prompt (all missing names are listed).
    """
    if len(refs) > catalog.CHARACTERS_PER_VIDEO:
        raise InvalidRequest(
            f"{len(refs)} characters were given; a video can use at most {catalog.CHARACTERS_PER_VIDEO}.",
            param="characters",
            code="too_many_characters",
        )
    found: dict[str, CharacterRecord] = {}
    for ref in refs:
        record = registry.get_character(ref)
        if record is None:
            known = ", ".join(repr(c.name) for c in registry.list_characters()) or "none yet"
            raise InvalidRequest(
                f"No character {ref!r} (known: {known}); make it first with create_character.",
                param="characters",
                code="unknown_character",
            )
        if record.backend != backend:
            raise InvalidRequest(
                f"Character {record.name!r} was made on {record.backend}, not on {backend}; make it "
                "again here with create_character.",
                param="characters",
                code="character_on_other_backend",
            )
        found[record.id] = record
    missing = [record.name for record in found.values() if record.name not in prompt]
    if missing:
        names = ", ".join(repr(name) for name in missing)
        raise InvalidRequest(
            f"The prompt must contain each character's name exactly as written; missing: {names}. "
            "Mention them by that name where they appear in the shot.",
            param="prompt",
            code="character_not_in_prompt",
        )
    return tuple(found.values())


# Over 60 lines: the checks before the one billable upload read in the order they are made.
async def create_character(
    studio: Studio,
    *,
    name: str,
    clip_path: str | None = None,
    video_id: str | None = None,
    start_seconds: float = 0.0,
    seconds: float = DEFAULT_CLIP_SECONDS,
    idempotency_key: str | None = None,
) -> CharacterOutcome:
    """Upload a character made from a local clip, or from a stretch of a registry video.

    Everything checkable is checked before the upload: the name, the choice of source, the
    clip's length as measured in the file. Cutting from a video may first fetch its status and
    file (free reads). With an `idempotency_key`, a call repeating it gets its first call's
    character and uploads nothing, from any process sharing the registry.

    Raises:
        InvalidRequest: a bad name or source, a clip outside 2–4 s, a path outside the allowed
            folders, a stretch outside the video.
        OutcomeUnknown: the upload's answer was lost (now, or in the key's first call); a
            character may exist.
        InvalidRequest: also when the key's first call is still uploading (`key_in_use`).
        APIError: the backend refused the clip.
    """
    name = check_name(name)
    if (clip_path is None) == (video_id is None):
        raise InvalidRequest(
            "Give either clip_path (a local 2–4 s clip) or video_id with start_seconds (a stretch of a "
            "video made here), not both and not neither.",
            param="clip_path",
            code="conflicting_arguments",
        )
    if clip_path is not None:
        clip = _local_clip(studio, clip_path)
        info = await _measure(clip)
        check_clip_seconds(info.seconds, f"The clip {clip.name}", param="clip_path")
        source = f"file {clip}"
    else:
        assert video_id is not None  # the check above leaves exactly one source
        check_clip_seconds(seconds, "The requested stretch", param="seconds")
        _check_start(start_seconds)
        video = await studio.ensure_downloaded(video_id)
        clip, info = await _cut(Path(video.files["video"]), start_seconds, seconds)
        check_clip_seconds(info.seconds, "The cut clip", param="seconds")
        source = f"{video.id} from {start_seconds:g} s for {seconds:g} s"
    if idempotency_key is not None:
        taken = studio.registry.begin_character(idempotency_key, key_since=studio.key_since(idempotency_key))
        made = None if taken.fresh else await _first_call(studio, idempotency_key, taken)
        if made is not None:
            return CharacterOutcome(record=made, clip=clip, clip_seconds=info.seconds, replayed=True)
    try:
        character, why = await _upload(studio, name, clip)
        if why is not None:
            record = await _by_reference(studio, name, clip, info, source, why, idempotency_key)
            return CharacterOutcome(record=record, clip=clip, clip_seconds=info.seconds)
    except OutcomeUnknown:
        raise  # a character may exist: the key stays taken, so a retry never uploads again
    except Exception:
        if idempotency_key is not None:
            studio.registry.release_character_key(idempotency_key)  # nothing was made
        raise
    assert character is not None  # made by the backend when no reason to do without it was found
    record = CharacterRecord(
        id=character.id,
        name=character.name or name,
        backend=studio.settings.backend_label,
        source=source,
        created_at=studio.clock.now(),
    )
    try:
        studio.registry.put_character(record, key=idempotency_key)
    except RegistryError as exc:
        raise RegistryError(
            f"The character {record.name!r} was made on the backend with id {record.id} but could not "
            f"be recorded here: {exc}. Use that id in characters=[…]."
        ) from exc
    return CharacterOutcome(record=record, clip=clip, clip_seconds=info.seconds)


async def _upload(studio: Studio, name: str, clip: Path) -> tuple[Character | None, str | None]:
    """The backend's character, or why the backend cannot make one (then nothing was made)."""
    why = studio.lacks("characters")
    if why is not None:
        return None, why
    try:
        return await studio.client.create_character(name=name, video=clip, model=catalog.DEFAULT_MODEL), None
    except APIStatusError:
        why = studio.lacks("characters")  # the client learns a missing endpoint from its answer
        if why is None:
            raise
        return None, why


async def _first_call(studio: Studio, key: str, taken: CharacterKey) -> CharacterRecord | None:
    """The character the key's first call made — waiting, within this call's limit, while that
    call may still be uploading — or None when that call made nothing and this one now holds
    the key (then upload).

    Raises:
        InvalidRequest: the first call may still be uploading when this call's wait ends.
        OutcomeUnknown: the first call's answer was lost; the character may exist.
    """
    upload_ends = taken.started_at + studio.settings.request_timeout + _UPLOAD_MARGIN_SECONDS
    wait_ends = studio.clock.now() + studio.settings.max_wait_seconds
    while taken.record is None and studio.clock.now() < min(upload_ends, wait_ends):
        await studio.clock.sleep(_KEY_POLL_SECONDS)
        taken = studio.registry.begin_character(key, key_since=studio.key_since(key))
        if taken.fresh:  # its first call made nothing and freed it: this call holds it now
            return None
    if taken.record is not None:
        return taken.record
    if studio.clock.now() < upload_ends:
        raise InvalidRequest(
            f"idempotency_key {key!r} belongs to a create_character call still uploading its clip; "
            "nothing was sent again. Call again in a moment.",
            param="idempotency_key",
            code="key_in_use",
        )
    raise OutcomeUnknown(
        f"The create_character call with idempotency_key {key!r} sent its clip and its answer was "
        "lost: the character may exist on the backend but has no id here. Nothing was sent again. "
        "To make it anyway, call again with a new idempotency_key.",
        code="character_answer_lost",
        param="idempotency_key",
    )


def reference_note(record: CharacterRecord) -> str:
    return (
        f"{record.name} appears by a reference frame (the backend has no characters): the clip starts on "
        "that frame and the prompt names it, so the likeness is approximate."
    )


async def _by_reference(
    studio: Studio, name: str, clip: Path, info: MediaInfo, source: str, why: str, key: str | None
) -> CharacterRecord:
    """A character kept here as one frame of its clip, since the backend cannot make one."""
    folder = studio.settings.output_dir / "characters"
    reference = folder / f"{uuid.uuid4().hex}.png"

    def grab() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        frame_at(clip, info.seconds / 2).save(reference, format="PNG")

    await anyio.to_thread.run_sync(grab)
    record = CharacterRecord(
        id=f"local_char_{uuid.uuid4().hex}",
        name=name,
        backend=studio.settings.backend_label,
        source=f"{source}; kept here as a reference frame because {why}",
        created_at=studio.clock.now(),
        reference=str(reference),
    )
    studio.registry.put_character(record, key=key)
    return record


def _local_clip(studio: Studio, clip_path: str) -> Path:
    try:
        return confine(clip_path, [studio.settings.output_dir, *studio.settings.input_roots])
    except InvalidRequest as exc:
        raise InvalidRequest(str(exc), param="clip_path", code=exc.code) from exc


def _check_start(start_seconds: float) -> None:
    # `not a <= x <= b` also refuses NaN; an infinite start would overflow the cut's arithmetic.
    if not 0 <= start_seconds <= MAX_START_SECONDS:
        raise InvalidRequest(
            f"start_seconds must be between 0 and {MAX_START_SECONDS:g} (inside the video).",
            param="start_seconds",
            code="stretch_outside_video",
        )


async def _measure(clip: Path) -> MediaInfo:
    """The clip's length and size, measured by opening it as a video (MP4/MOV/WebM only: see
    `media.video`) within `PROBE_SECONDS`."""

    def work() -> MediaInfo:
        try:
            return probe(clip)
        except ValueError as exc:
            raise InvalidRequest(
                f"{clip.name} is not a readable video: {exc}", param="clip_path", code="unreadable_clip"
            ) from exc

    try:
        with anyio.fail_after(PROBE_SECONDS):
            return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
    except TimeoutError:
        raise InvalidRequest(
            f"{clip.name} could not be read within {PROBE_SECONDS:g} s; use a plain local MP4.",
            param="clip_path",
            code="unreadable_clip",
        ) from None


async def _cut(video: Path, start: float, seconds: float) -> tuple[Path, MediaInfo]:
    """Cut `seconds` from `start` into a clip beside the video, named after it and the stretch."""
    stem = video.name.removesuffix(".mp4")
    name = safe_filename(f"{stem}-character-{round(start * 1000)}-{round(seconds * 1000)}", "video")
    dest = video.parent / name
    try:
        info = await anyio.to_thread.run_sync(lambda: cut_clip(video, dest, start=start, seconds=seconds))
    except ValueError as exc:
        raise InvalidRequest(
            f"The stretch cannot be cut: {exc}.", param="start_seconds", code="stretch_outside_video"
        ) from exc
    return dest, info
