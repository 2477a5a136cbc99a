"""The one capability catalogue: models, sizes, durations, prices and limits.

Everything that validates a request (the MCP tools before spending, the emulator when answering)
reads this module, so the two can never disagree. Figures follow OpenAI's video-generation guide
where it is more permissive than the typed spec (durations 16/20 s, 1080p sizes for sora-2-pro);
backends that are stricter will answer with their own 400, which the client maps faithfully.
Prices are the launch list prices per second of output and are data, not promises.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_MODEL = "sora-2"
DEFAULT_SIZE = "720x1280"
DEFAULT_SECONDS = "4"
SECONDS = ("4", "8", "12", "16", "20")
PROMPT_MAX_CHARS = 32_000
IMAGE_MAX_BYTES = 20 * 1024 * 1024
IMAGE_FORMATS = ("jpeg", "png", "webp")
MAX_VARIATIONS = 4

# Extension and character limits from the guide (not in the typed spec).
EXTENSION_MAX_SECONDS = 20
EXTENSIONS_PER_VIDEO = 6
EXTENDED_MAX_TOTAL_SECONDS = 120
CHARACTER_CLIP_MIN_SECONDS = 2.0
CHARACTER_CLIP_MAX_SECONDS = 4.0
CHARACTER_NAME_MAX_CHARS = 80
CHARACTERS_PER_VIDEO = 2

# Rough render time per second of output on the real service, used for estimates and for the
# emulator's simulated lifecycle. The real figures varied a lot with load.
_RENDER_SECONDS_PER_OUTPUT_SECOND = {"sora-2": 8.0, "sora-2-pro": 20.0}


@dataclass(frozen=True)
class ModelSpec:
    """What one model accepts and what it costs."""

    name: str
    description: str
    sizes: tuple[str, ...]
    # USD per second of output, by size; sizes not listed use `default_price`.
    default_price: float
    price_by_size: dict[str, float] = field(default_factory=dict)

    def price_per_second(self, size: str) -> float:
        return self.price_by_size.get(size, self.default_price)


MODELS: dict[str, ModelSpec] = {
    "sora-2": ModelSpec(
        name="sora-2",
        description="Fast exploration model; good for drafts, social clips and iteration.",
        sizes=("720x1280", "1280x720"),
        default_price=0.10,
    ),
    "sora-2-pro": ModelSpec(
        name="sora-2-pro",
        description="Slower, pricier, more polished output; higher resolutions.",
        sizes=("720x1280", "1280x720", "1024x1792", "1792x1024", "1080x1920", "1920x1080"),
        default_price=0.30,
        price_by_size={"1024x1792": 0.50, "1792x1024": 0.50, "1080x1920": 0.50, "1920x1080": 0.50},
    ),
}


def resolve_model(model: str) -> ModelSpec | None:
    """The spec for a model name, accepting dated snapshots such as `sora-2-2025-12-08`."""
    if model in MODELS:
        return MODELS[model]
    # Snapshots are the base name plus a date; match the longest base so sora-2-pro-… wins.
    for name in sorted(MODELS, key=len, reverse=True):
        suffix = model.removeprefix(name + "-")
        if suffix != model and _is_date(suffix):
            return MODELS[name]
    return None


def _is_date(text: str) -> bool:
    parts = text.split("-")
    return len(parts) == 3 and all(p.isdigit() for p in parts) and len(parts[0]) == 4


def parse_size(size: str) -> tuple[int, int]:
    """`"1280x720"` → `(1280, 720)`. Raises ValueError on anything else."""
    width, sep, height = size.partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise ValueError(f"size must look like WIDTHxHEIGHT, got {size!r}")
    return int(width), int(height)


def aspect_of(size: str) -> str:
    width, height = parse_size(size)
    return "portrait" if height > width else "landscape" if width > height else "square"


def estimate_cost(model: str, size: str, seconds: int) -> float:
    """Estimated USD for one clip, from the catalogue's list prices."""
    spec = resolve_model(model)
    if spec is None:
        return 0.0
    return round(spec.price_per_second(size) * seconds, 2)


def estimate_render_seconds(model: str, seconds: int) -> float:
    """Typical wall-clock time the real service took for a clip of this length."""
    spec = resolve_model(model)
    base = _RENDER_SECONDS_PER_OUTPUT_SECOND.get(spec.name if spec else "", 10.0)
    return base * seconds


def capabilities() -> dict[str, object]:
    """The catalogue as plain data, for the capabilities resource and for documentation."""
    return {
        "models": {
            spec.name: {
                "description": spec.description,
                "sizes": list(spec.sizes),
                "seconds": [int(s) for s in SECONDS],
                "usd_per_second": {size: spec.price_per_second(size) for size in spec.sizes},
                "typical_render_seconds_per_output_second": _RENDER_SECONDS_PER_OUTPUT_SECOND[spec.name],
            }
            for spec in MODELS.values()
        },
        "defaults": {"model": DEFAULT_MODEL, "size": DEFAULT_SIZE, "seconds": int(DEFAULT_SECONDS)},
        "limits": {
            "prompt_max_chars": PROMPT_MAX_CHARS,
            "image_reference": {
                "formats": list(IMAGE_FORMATS),
                "max_bytes": IMAGE_MAX_BYTES,
                "note": "Becomes the first frame; fitted to the requested size; no human faces.",
            },
            "variations_per_call": MAX_VARIATIONS,
            "extension": {
                "max_seconds_each": EXTENSION_MAX_SECONDS,
                "max_per_source_video": EXTENSIONS_PER_VIDEO,
                "max_total_seconds": EXTENDED_MAX_TOTAL_SECONDS,
            },
            "character": {
                "clip_seconds": [CHARACTER_CLIP_MIN_SECONDS, CHARACTER_CLIP_MAX_SECONDS],
                "name_max_chars": CHARACTER_NAME_MAX_CHARS,
                "max_per_video": CHARACTERS_PER_VIDEO,
                "note": "Non-human subjects only; the name must appear verbatim in the prompt.",
            },
        },
        "prices_note": "Launch list prices in USD per second of output; real gateways may differ.",
    }
