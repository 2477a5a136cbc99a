"""Planning a clip: every check that can be made before anything is sent, against the catalogue.

A `ClipPlan` is a request that passed them all. Nothing here touches the network or the registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sora_mcp import catalog
from sora_mcp.errors import InvalidRequest
from sora_mcp.media.images import PreparedImage

# Backend ids are opaque (gateways base64-encode provider data), so only refuse what can never
# be an id: empty, whitespace or control characters, absurd length.
_ID_RE = re.compile(r"^[^\s\x00-\x1f/\\]{1,256}$")


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

    @property
    def total_cost(self) -> float:
        return round(self.cost_per_clip * self.variations, 2)


def check_video_id(video_id: str) -> str:
    """Raises InvalidRequest unless `video_id` could be a backend or local id."""
    if not _ID_RE.match(video_id):
        raise InvalidRequest(
            "video_id must be the id returned by generate or list_videos (e.g. 'video_123'); "
            f"got {video_id[:80]!r}.",
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


def plan_clip(*, prompt: str, model: str, size: str, seconds: int, variations: int = 1) -> ClipPlan:
    """Validate a request against the catalogue. Raises InvalidRequest saying what is allowed."""
    text = check_prompt(prompt)
    spec = catalog.resolve_model(model)
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
