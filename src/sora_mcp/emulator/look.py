"""The look of a simulated clip: colours and motion from the prompt's words, shapes, character
badges, and the text helpers the overlay is drawn with. Everything here is drawn once per
clip (as PIL pictures); `render` turns them into layers and moves them frame by frame.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

Rgb = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

_CAPTION_MAX_CHARS = 600  # more than the caption's lines hold at any size; the wrapper reads no further
INK = (255, 255, 255, 255)
SHADE = (0, 0, 0, 150)


def digest(text: str, size: int = 96) -> bytes:
    """Bytes derived from the words of `text` only, so case and punctuation do not matter."""
    words = " ".join(re.findall(r"\w+", text.lower()))
    return hashlib.shake_256(words.encode()).digest(size)


def unit(data: bytes, index: int) -> float:
    """A number in [0, 1] read from the `index`-th pair of bytes of `data`."""
    return int.from_bytes(data[2 * index : 2 * index + 2], "big") / 0xFFFF


def hsv(hue: float, saturation: float, value: float) -> Rgb:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return round(r * 255), round(g * 255), round(b * 255)


# Hue offsets from the base hue of: the gradient's second stop, the first and second accents.
_SCHEMES = ((0.08, 0.5, 0.58), (0.12, 0.33, 0.66), (0.05, 0.45, 0.9), (0.9, 0.15, 0.55))

# Colour words and their hue; the achromatic ones (None) make a grey palette of that lightness.
COLOURS: dict[str, float | None] = {
    "red": 0.0, "crimson": 0.97, "scarlet": 0.01, "ruby": 0.98, "cherry": 0.97, "orange": 0.07,
    "amber": 0.1, "copper": 0.06, "gold": 0.12, "golden": 0.12, "yellow": 0.16, "lemon": 0.17,
    "lime": 0.24, "green": 0.33, "emerald": 0.39, "mint": 0.42, "jade": 0.43, "teal": 0.48,
    "turquoise": 0.47, "cyan": 0.5, "aqua": 0.5, "azure": 0.57, "blue": 0.62, "sapphire": 0.63,
    "navy": 0.64, "cobalt": 0.61, "indigo": 0.7, "violet": 0.76, "purple": 0.78, "lavender": 0.75,
    "magenta": 0.85, "pink": 0.92, "fuchsia": 0.88, "rose": 0.95, "brown": 0.07, "beige": 0.1,
}  # fmt: skip
_GREYS: dict[str, float] = {"black": 0.12, "grey": 0.45, "gray": 0.45, "silver": 0.7, "white": 0.9}
_DULL = frozenset({"brown", "beige", "copper"})  # hues that read right only dark or pale


def colour_words(prompt: str) -> list[str]:
    """The colour words of `prompt`, in order of appearance (each once)."""
    seen: dict[str, None] = {}
    for word in re.findall(r"[a-z]+", prompt.lower()):
        if word in COLOURS or word in _GREYS:
            seen.setdefault(word)
    return list(seen)


def palette(prompt: str) -> tuple[Rgb, Rgb, Rgb, Rgb]:
    """A dark gradient top, a lighter gradient bottom, and two bright accents. A colour word in
    the prompt sets the base hue (a second one, the accents): a "red" ad is red. Otherwise the
    hue and the scheme come from the words' hash."""
    data = digest(prompt)
    named = colour_words(prompt)
    if not named:
        return _hashed_palette(data)
    first = named[0]
    if first in _GREYS:
        level = _GREYS[first]
        accent = COLOURS.get(named[1]) if len(named) > 1 else None
        return (
            hsv(0, 0, 0.1 + 0.5 * level),
            hsv(0, 0, 0.25 + 0.6 * level),
            hsv(accent or 0.0, 0.0 if accent is None else 0.8, 0.95),
            hsv(0, 0, 1.0 - 0.6 * level),
        )
    hue = (COLOURS[first] or 0.0) + 0.02 * (unit(data, 0) - 0.5)  # a hint of the prompt's own hue
    second = next((COLOURS[w] for w in named[1:] if COLOURS.get(w) is not None), None)
    saturation = 0.55 if first in _DULL else 0.85
    return (
        hsv(hue, saturation, 0.3 + 0.1 * unit(data, 3)),
        hsv(hue, saturation * 0.9, 0.7 + 0.15 * unit(data, 5)),
        hsv(second if second is not None else hue + 0.04, 0.8, 0.97),
        hsv(hue - 0.03, 0.45, 1.0),
    )


def _hashed_palette(data: bytes) -> tuple[Rgb, Rgb, Rgb, Rgb]:
    hue = unit(data, 0)
    second, first_accent, second_accent = _SCHEMES[data[2] % len(_SCHEMES)]
    return (
        hsv(hue, 0.55 + 0.3 * unit(data, 2), 0.2 + 0.15 * unit(data, 3)),
        hsv(hue + second, 0.45 + 0.3 * unit(data, 4), 0.5 + 0.25 * unit(data, 5)),
        hsv(hue + first_accent, 0.7 + 0.25 * unit(data, 6), 0.95),
        hsv(hue + second_accent, 0.55 + 0.35 * unit(data, 7), 0.9),
    )


@dataclass(frozen=True)
class Sprite:
    """An RGBA image moving at a constant velocity (px/s), wrapping around the frame edges."""

    image: Image.Image
    start: tuple[float, float]
    velocity: tuple[float, float]
    bob: float = 0.0  # amplitude of a vertical sway, px

    def position(self, t: float, frame: tuple[int, int]) -> tuple[int, int]:
        w, h = self.image.size
        x = (self.start[0] + self.velocity[0] * t) % (frame[0] + w) - w
        y = (self.start[1] + self.velocity[1] * t) % (frame[1] + h) - h
        return round(x), round(y + self.bob * math.sin(2 * math.pi * t))


def shape_sprites(data: bytes, accents: tuple[Rgb, Rgb], size: tuple[int, int]) -> list[Sprite]:
    """Three to five shapes drifting one way (the prompt picks which, and how fast), with parallax."""
    angle = 2 * math.pi * unit(data, 8)
    speed = (0.12 + 0.3 * unit(data, 9)) * math.hypot(*size)
    sprites = []
    for k in range(3 + data[20] % 3):
        at = 11 + 5 * k
        side = max(6, round(min(size) * (0.12 + 0.14 * unit(data, at))))
        parallax = 0.6 + 0.8 * unit(data, at + 1)
        image = _shape_image(side, accents[k % 2], kind=data[80 + k] % 3)
        start = (unit(data, at + 2) * (size[0] + side), unit(data, at + 3) * (size[1] + side))
        velocity = (math.cos(angle) * speed * parallax, math.sin(angle) * speed * parallax)
        sprites.append(Sprite(image, start, velocity, bob=side * 0.2 * unit(data, at + 4)))
    return sprites


def _shape_image(side: int, colour: Rgb, *, kind: int) -> Image.Image:
    # Drawn at 4x and box-filtered down once: smooth edges for the price of one cheap reduce.
    big = side * 4
    image = Image.new("RGBA", (big, big))
    draw = ImageDraw.Draw(image)
    fill = (*colour, 215)
    if kind == 0:
        draw.ellipse((0, 0, big - 1, big - 1), fill=fill)
    elif kind == 1:
        draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=big // 5, fill=fill)
    else:
        draw.ellipse((0, 0, big - 1, big - 1), outline=fill, width=max(4, big // 7))
    return image.reduce(4)


# --- text --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def font(size: int) -> Font:
    return ImageFont.load_default(size=size)


def line_height(of: Font) -> int:
    return round(of.getbbox("Ag")[3])


def ellipsize(text: str, of: Font, width: float) -> str:
    """`text` if it fits in `width` px, else its longest prefix that fits with an ellipsis."""
    return text if of.getlength(text) <= width else _with_ellipsis(text, of, width)


def _with_ellipsis(text: str, of: Font, width: float) -> str:
    while text and of.getlength(text + "…") > width:
        text = text[:-1]
    return text.rstrip() + "…"


def wrap(text: str, of: Font, width: float, max_lines: int) -> list[str]:
    """Greedy word wrap into at most `max_lines`; the last ends in an ellipsis if text is left out."""
    text = " ".join(text.split())
    lines: list[str] = []
    current = ""
    for word in text[:_CAPTION_MAX_CHARS].split(" "):
        candidate = f"{current} {word}" if current else word
        if of.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        while of.getlength(word) > width and len(word) > 1:  # hard-break what cannot fit
            cut = 1
            while cut < len(word) and of.getlength(word[: cut + 1]) <= width:
                cut += 1
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    lines.append(current)
    if len(text) > _CAPTION_MAX_CHARS or len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = _with_ellipsis(lines[-1], of, width)
    return lines


def text_box(lines: Sequence[str], of: Font, fill: tuple[int, ...], pad: int, width: int = 0) -> Image.Image:
    """Lines of white text on a rounded box; `width` 0 fits the box to the text."""
    step = line_height(of) + pad // 2
    width = max(1, width or round(max(of.getlength(line) for line in lines)) + 2 * pad)
    box = Image.new("RGBA", (width, step * len(lines) - pad // 2 + 2 * pad))
    draw = ImageDraw.Draw(box)
    draw.rounded_rectangle((0, 0, box.width - 1, box.height - 1), radius=pad, fill=fill)
    for k, line in enumerate(lines):
        draw.text((pad, pad + k * step), line, font=of, fill=INK)
    return box


def timecode(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes):02d}:{rest:05.2f}"
