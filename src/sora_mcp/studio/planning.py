"""Planning a clip: every check that can be made before anything is sent, against the catalogue.

A `ClipPlan` is a request that passed them all. Nothing here touches the network or the registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sora_mcp import catalog
from sora_mcp.errors import InvalidRequest
from sora_mcp.media.images import PreparedImage

# Backend ids are opaque and never parsed: gateways base64-encode their routing data into them
# (LiteLLM: 158 characters on 1.106, 266 on 1.110, with `+`, `/` and `=`), Bifrost appends
# `:provider`. So refuse only what can never be an id: empty, blanks or control characters, or
# longer than MAX_ID_CHARS. Ids travel quoted as one path segment and name files only hashed.
MAX_ID_CHARS = 8192
_ID_RE = re.compile(rf"^[^\s\x00-\x1f\x7f]{{1,{MAX_ID_CHARS}}}$")


@dataclass(frozen=True)
class ClipPlan:
    """A validated generation request, ready to send."""

    prompt: str
    model: str
    size: str
    seconds: int
    variations: int
    image: PreparedImage | None
    cost_per_clip: float
    render_seconds: float
    characters: tuple[str, ...] = ()
    """Backend ids of the characters the clip uses (already checked against the prompt)."""
    parent_id: str | None = None
    """The video whose frame starts this clip (`start_from`), if any."""
    note: str | None = None
    fallback: str | None = None
    """What stands in for something the backend lacks (a character as a reference frame)."""

    @property
    def total_cost(self) -> float:
        return round(self.cost_per_clip * self.variations, 2)


def check_video_id(video_id: str) -> str:
    """Raises InvalidRequest unless `video_id` could be a backend or local id."""
    if not _ID_RE.match(video_id):
        raise InvalidRequest(
            "video_id must be the id returned by generate or list_videos (e.g. 'video_123'); "
            f"got {video_id[:80]!r}{'…' if len(video_id) > 80 else ''} ({len(video_id)} characters; ids are "
            f"1–{MAX_ID_CHARS} printable characters).",
            param="video_id",
        )
    return video_id


def check_prompt(prompt: str) -> str:
    """The prompt without surrounding blanks. Raises InvalidRequest if empty or too long."""
    text = prompt.strip()
    if not text:
        raise InvalidRequest(
            "prompt is empty: describe the shot (subject, action, setting, camera, light).", param="prompt"
        )
    if len(text) > catalog.PROMPT_MAX_CHARS:
        raise InvalidRequest(
            f"prompt is {len(text)} characters; at most {catalog.PROMPT_MAX_CHARS} are allowed.",
            param="prompt",
        )
    return text


def check_seconds(seconds: int) -> int:
    """Raises InvalidRequest unless `seconds` is a duration the API accepts."""
    if str(seconds) not in catalog.SECONDS:
        raise InvalidRequest(
            f"seconds={seconds} is not available; allowed: {', '.join(catalog.SECONDS)}. "
            "For longer pieces, generate and then extend.",
            param="seconds",
        )
    return seconds


def plan_clip(
    *, prompt: str, model: str, size: str, seconds: int, variations: int = 1, strict: bool = True
) -> ClipPlan:
    """Validate a request against the catalogue. Raises InvalidRequest saying what is allowed.

    With `strict` off (a gateway or model server, whose model names are its own), a model the
    catalogue does not know passes through unpriced, with any WIDTHxHEIGHT; the backend's own
    400 then says what it refuses."""
    text = check_prompt(prompt)
    spec = catalog.resolve_model(model)
    if spec is None and not strict:
        try:
            catalog.parse_size(size)
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="size") from exc
        check_seconds(seconds)
        if not 1 <= variations <= catalog.MAX_VARIATIONS:
            raise InvalidRequest(f"variations must be 1–{catalog.MAX_VARIATIONS}.", param="variations")
        return ClipPlan(
            prompt=text,
            model=model,
            size=size,
            seconds=seconds,
            variations=variations,
            image=None,
            cost_per_clip=0.0,
            render_seconds=catalog.estimate_render_seconds(model, seconds),
            note=f"{model} is not in sora-mcp's catalogue: sent as named, with no price estimate.",
        )
    if spec is None:
        raise InvalidRequest(
            f"model {model!r} is not available; use one of {', '.join(catalog.MODELS)} "
            "(dated snapshots such as sora-2-2025-12-08 also work).",
            param="model",
        )
    if size not in spec.sizes:
        raise InvalidRequest(
            f"size {size!r} is not available for {spec.name}; allowed: {', '.join(spec.sizes)}"
            + ("" if spec.name == "sora-2-pro" else " (sora-2-pro also offers larger sizes)")
            + ".",
            param="size",
        )
    check_seconds(seconds)
    if not 1 <= variations <= catalog.MAX_VARIATIONS:
        raise InvalidRequest(
            f"variations must be 1–{catalog.MAX_VARIATIONS}; each variation is a separate billed job.",
            param="variations",
        )
    return ClipPlan(
        prompt=text,
        model=model,
        size=size,
        seconds=seconds,
        variations=variations,
        image=None,
        cost_per_clip=catalog.estimate_cost(model, size, seconds),
        render_seconds=catalog.estimate_render_seconds(model, seconds),
    )
