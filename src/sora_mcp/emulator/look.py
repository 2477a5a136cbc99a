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


def palette(data: bytes) -> tuple[Rgb, Rgb, Rgb, Rgb]:
    """A dark gradient top, a lighter gradient bottom, and two bright accents."""
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


def character_sprites(names: Sequence[str], size: tuple[int, int]) -> list[Sprite]:
    """One badge per name, walking across its own row; alternate rows walk the other way."""
    sprites = []
    for k, name in enumerate(names):
        data = digest(f"character {name}", 6)
        image = _badge(name, hsv(unit(data, 0), 0.65, 0.95), min(size))
        row = size[1] * (0.3 + 0.22 * (k % 3)) - image.height / 2
        speed = size[0] * (0.08 + 0.1 * unit(data, 1)) * (1 if k % 2 == 0 else -1)
        start = (unit(data, 2) * size[0], row + image.height)  # wraps back to `row`
        sprites.append(Sprite(image, start, (speed, 0.0), bob=min(size) * 0.015))
    return sprites


def _badge(name: str, colour: Rgb, side: int) -> Image.Image:
    """A silhouette above a name plate, in the character's own colour."""
    label_font = font(max(8, round(side * 0.045)))
    label = ellipsize(name, label_font, side * 0.6)
    pad = max(2, round(side * 0.012))
    plate = (round(label_font.getlength(label)) + 2 * pad, line_height(label_font) + 2 * pad)
    figure = max(12, round(side * 0.2))
    width, height = max(plate[0], figure), figure + plate[1]
    image = Image.new("RGBA", (width, height))
    draw = ImageDraw.Draw(image)
    cx, head, ink = width // 2, figure // 3, (*colour, 255)
    draw.ellipse((cx - head // 2, 0, cx + head // 2, head), fill=ink)
    draw.rounded_rectangle((cx - figure // 3, head + 1, cx + figure // 3, figure), figure // 6, fill=ink)
    draw.rounded_rectangle((0, figure, width - 1, height - 1), 2 * pad, fill=(15, 15, 20, 220), outline=ink)
    draw.text((width / 2, figure + plate[1] / 2), label, font=label_font, fill=ink, anchor="mm")
    return image


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
