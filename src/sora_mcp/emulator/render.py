"""Real media for simulated jobs: an H.264 MP4 per job, plus its WebP thumbnail and JPEG
spritesheet, so every client code path (download, probe, play) meets genuine files offline.

A clip is a deterministic function of its `RenderSpec`. The palette (four colours) and the
motion of the shapes come from a hash of the prompt's words: the same prompt always gives the
same frames, different prompts look different at a glance. Every animated frame carries a
"SIMULATED" mark, the wrapped prompt, a running timecode, the model and video id, and a progress
bar. With a first frame, frame 0 is exactly that image and later frames zoom and pan over it.
Character names walk across the frame in badges; a note (an edit instruction, say) tints the
clip and shows as a banner.

Speed is part of the contract (the emulator renders on demand): everything static is drawn once
per clip and each frame only composites what moves.

Joining clips and making the thumbnail and spritesheet work on any video file, so they live in
`sora_mcp.media.video`; they are re-exported here so the emulator has one module to render with.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import io
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from sora_mcp.media.video import (
    check_even_size,
    concat_videos,
    render_spritesheet,
    render_thumbnail,
    write_h264,
)

__all__ = ["RenderSpec", "concat_videos", "render_spritesheet", "render_thumbnail", "render_video"]

Rgb = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
Patch = tuple[tuple[int, int], Image.Image]

_CAPTION_MAX_LINES = 3
_CAPTION_MAX_CHARS = 600  # more than three lines hold at any size; the wrapper reads no further
_ZOOM = 0.12  # how far a first-frame clip has zoomed in by its last frame
_ZOOM_STEPS_PER_SECOND = 12  # see _Scene.frames
_TINT_STRENGTH = 0.5
_MARK_RED: Rgb = (205, 32, 44)
_INK = (255, 255, 255, 255)
_SHADE = (0, 0, 0, 150)


@dataclass(frozen=True)
class RenderSpec:
    """Everything that determines a simulated clip; equal specs render identical frames."""

    prompt: str
    width: int
    height: int
    seconds: float
    model: str = "sora-2"
    video_id: str = ""
    # Image bytes (PNG/JPEG/WebP); centre-cropped and scaled to the frame size if not already it.
    first_frame: bytes | None = None
    characters: tuple[str, ...] = ()
    note: str | None = None
    fps: int = 24

    @property
    def frame_count(self) -> int:
        return max(1, round(self.seconds * self.fps))


def render_video(spec: RenderSpec, dest: Path) -> None:
    """Render `spec` to an H.264 MP4 at `dest` (atomically): exactly `width` x `height`,
    `round(seconds * fps)` frames, lasting `frame_count / fps` seconds.

    Raises:
        ValueError: odd or non-positive size, non-positive duration or fps, or `first_frame`
            bytes that are not a readable image.
    """
    check_even_size(spec.width, spec.height)
    if spec.seconds <= 0 or spec.fps <= 0:
        raise ValueError(f"seconds and fps must be positive, got {spec.seconds} s at {spec.fps} fps")
    scene = _Scene.build(spec)
    write_h264(dest, scene.frames(), width=spec.width, height=spec.height, fps=spec.fps)


# --- the look: colours and motion from words ---------------------------------------------------


def _digest(text: str, size: int = 96) -> bytes:
    """Bytes derived from the words of `text` only, so case and punctuation do not matter."""
    words = " ".join(re.findall(r"\w+", text.lower()))
    return hashlib.shake_256(words.encode()).digest(size)


def _unit(digest: bytes, index: int) -> float:
    """A number in [0, 1] read from the `index`-th pair of bytes of `digest`."""
    return int.from_bytes(digest[2 * index : 2 * index + 2], "big") / 0xFFFF


def _hsv(hue: float, saturation: float, value: float) -> Rgb:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return round(r * 255), round(g * 255), round(b * 255)


# Hue offsets from the base hue of: the gradient's second stop, the first and second accents.
_SCHEMES = ((0.08, 0.5, 0.58), (0.12, 0.33, 0.66), (0.05, 0.45, 0.9), (0.9, 0.15, 0.55))


def _palette(digest: bytes) -> tuple[Rgb, Rgb, Rgb, Rgb]:
    """A dark gradient top, a lighter gradient bottom, and two bright accents."""
    hue = _unit(digest, 0)
    second, first_accent, second_accent = _SCHEMES[digest[2] % len(_SCHEMES)]
    return (
        _hsv(hue, 0.55 + 0.3 * _unit(digest, 2), 0.2 + 0.15 * _unit(digest, 3)),
        _hsv(hue + second, 0.45 + 0.3 * _unit(digest, 4), 0.5 + 0.25 * _unit(digest, 5)),
        _hsv(hue + first_accent, 0.7 + 0.25 * _unit(digest, 6), 0.95),
        _hsv(hue + second_accent, 0.55 + 0.35 * _unit(digest, 7), 0.9),
    )


@dataclass(frozen=True)
class _Sprite:
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


def _shape_sprites(digest: bytes, accents: tuple[Rgb, Rgb], size: tuple[int, int]) -> list[_Sprite]:
    """Three to five shapes drifting one way (the prompt picks which, and how fast), with parallax."""
    angle = 2 * math.pi * _unit(digest, 8)
    speed = (0.12 + 0.3 * _unit(digest, 9)) * math.hypot(*size)
    sprites = []
    for k in range(3 + digest[20] % 3):
        at = 11 + 5 * k
        side = max(6, round(min(size) * (0.12 + 0.14 * _unit(digest, at))))
        parallax = 0.6 + 0.8 * _unit(digest, at + 1)
        image = _shape_image(side, accents[k % 2], kind=digest[80 + k] % 3)
        start = (_unit(digest, at + 2) * (size[0] + side), _unit(digest, at + 3) * (size[1] + side))
        velocity = (math.cos(angle) * speed * parallax, math.sin(angle) * speed * parallax)
        sprites.append(_Sprite(image, start, velocity, bob=side * 0.2 * _unit(digest, at + 4)))
    return sprites


def _shape_image(side: int, colour: Rgb, *, kind: int) -> Image.Image:
    # Drawn at 4x and scaled down once: smooth edges for the price of one resize per clip.
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
    return image.resize((side, side), Image.Resampling.LANCZOS)


def _character_sprites(names: Sequence[str], size: tuple[int, int]) -> list[_Sprite]:
    """One badge per name, walking across its own row; alternate rows walk the other way."""
    sprites = []
    for k, name in enumerate(names):
        digest = _digest(f"character {name}", 6)
        image = _badge(name, _hsv(_unit(digest, 0), 0.65, 0.95), min(size))
        row = size[1] * (0.3 + 0.22 * (k % 3)) - image.height / 2
        speed = size[0] * (0.08 + 0.1 * _unit(digest, 1)) * (1 if k % 2 == 0 else -1)
        start = (_unit(digest, 2) * size[0], row + image.height)  # wraps back to `row`
        sprites.append(_Sprite(image, start, (speed, 0.0), bob=min(size) * 0.015))
    return sprites


def _badge(name: str, colour: Rgb, unit: int) -> Image.Image:
    """A silhouette above a name plate, in the character's own colour."""
    font = _font(max(8, round(unit * 0.045)))
    label = _ellipsize(name, font, unit * 0.6)
    pad = max(2, round(unit * 0.012))
    plate = (round(font.getlength(label)) + 2 * pad, _line_height(font) + 2 * pad)
    figure = max(12, round(unit * 0.2))
    width, height = max(plate[0], figure), figure + plate[1]
    image = Image.new("RGBA", (width, height))
    draw = ImageDraw.Draw(image)
    cx, head, ink = width // 2, figure // 3, (*colour, 255)
    draw.ellipse((cx - head // 2, 0, cx + head // 2, head), fill=ink)
    draw.rounded_rectangle((cx - figure // 3, head + 1, cx + figure // 3, figure), figure // 6, fill=ink)
    draw.rounded_rectangle((0, figure, width - 1, height - 1), 2 * pad, fill=(15, 15, 20, 220), outline=ink)
    draw.text((width / 2, figure + plate[1] / 2), label, font=font, fill=ink, anchor="mm")
    return image


# --- text --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _font(size: int) -> Font:
    return ImageFont.load_default(size=size)


def _line_height(font: Font) -> int:
    return round(font.getbbox("Ag")[3])


def _ellipsize(text: str, font: Font, width: float) -> str:
    """`text` if it fits in `width` px, else its longest prefix that fits with an ellipsis."""
    return text if font.getlength(text) <= width else _with_ellipsis(text, font, width)


def _with_ellipsis(text: str, font: Font, width: float) -> str:
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text.rstrip() + "…"


def _wrap(text: str, font: Font, width: float, max_lines: int) -> list[str]:
    """Greedy word wrap into at most `max_lines`; the last ends in an ellipsis if text is left out."""
    text = " ".join(text.split())
    lines: list[str] = []
    current = ""
    for word in text[:_CAPTION_MAX_CHARS].split(" "):
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        while font.getlength(word) > width and len(word) > 1:  # hard-break what cannot fit
            cut = 1
            while cut < len(word) and font.getlength(word[: cut + 1]) <= width:
                cut += 1
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    lines.append(current)
    if len(text) > _CAPTION_MAX_CHARS or len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = _with_ellipsis(lines[-1], font, width)
    return lines


def _text_box(
    lines: Sequence[str], font: Font, fill: tuple[int, ...], pad: int, width: int = 0
) -> Image.Image:
    """Lines of white text on a rounded box; `width` 0 fits the box to the text."""
    step = _line_height(font) + pad // 2
    width = max(1, width or round(max(font.getlength(line) for line in lines)) + 2 * pad)
    box = Image.new("RGBA", (width, step * len(lines) - pad // 2 + 2 * pad))
    draw = ImageDraw.Draw(box)
    draw.rounded_rectangle((0, 0, box.width - 1, box.height - 1), radius=pad, fill=fill)
    for k, line in enumerate(lines):
        draw.text((pad, pad + k * step), line, font=font, fill=_INK)
    return box


def _timecode(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes):02d}:{rest:05.2f}"


@dataclass(frozen=True)
class _Overlay:
    """What sits on top of every animated frame: fixed patches and where the timecode goes."""

    patches: list[Patch]
    timecode_at: tuple[int, int]
    timecode_font: Font

    @classmethod
    def build(cls, spec: RenderSpec, tint: Rgb | None) -> _Overlay:
        w, h = spec.width, spec.height
        unit = min(w, h)
        margin, pad = max(3, round(unit * 0.03)), max(2, round(unit * 0.015))
        mark = _text_box(["SIMULATED"], _font(max(9, round(unit * 0.055))), (*_MARK_RED, 235), pad)
        small = _font(max(8, round(unit * 0.038)))
        room = w - mark.width - 3 * margin - 2 * pad
        label = _ellipsize(" · ".join(filter(None, (spec.model, spec.video_id))), small, room)
        total = _timecode(spec.seconds)
        # The timecode's line is left blank here and drawn per frame into the reserved space.
        width = round(max(small.getlength(label), small.getlength(f"{total} / {total}"))) + 2 * pad
        corner = _text_box([label, ""], small, _SHADE, pad, width)
        corner_xy = (w - margin - corner.width, margin)
        patches: list[Patch] = [((margin, margin), mark), (corner_xy, corner)]
        if spec.note:
            font = _font(max(9, round(unit * 0.045)))
            banner = _text_box(
                [_ellipsize(spec.note, font, w - 2 * (margin + pad))], font, (*(tint or _MARK_RED), 225), pad
            )
            patches.append(((margin, margin + max(mark.height, corner.height) + pad), banner))
        font = _font(max(9, round(unit * 0.05)))
        lines = _wrap(spec.prompt, font, w - 2 * (margin + pad), _CAPTION_MAX_LINES)
        caption = _text_box(lines, font, _SHADE, pad, w - 2 * margin)
        patches.append(((margin, h - margin - caption.height - _bar_height(spec)), caption))
        timecode_at = (corner_xy[0] + pad, corner_xy[1] + pad + _line_height(small) + pad // 2)
        return cls(patches, timecode_at, small)


def _bar_height(spec: RenderSpec) -> int:
    return max(2, min(spec.width, spec.height) // 60)


# --- the scene: backdrop, then sprites, then overlay, frame by frame -------------------------


@dataclass(frozen=True)
class _Scene:
    spec: RenderSpec
    backdrop: Image.Image  # the static background, or the (tinted) first frame to zoom over
    still: Image.Image | None  # frame 0 verbatim, when the spec gives a first frame
    focus: tuple[float, float]  # where a first-frame zoom heads, as fractions of the frame
    sprites: list[_Sprite]
    overlay: _Overlay
    accent: Rgb

    @classmethod
    def build(cls, spec: RenderSpec) -> _Scene:
        size = (spec.width, spec.height)
        digest = _digest(spec.prompt)
        top, bottom, *accents = _palette(digest)
        still = _fit(spec.first_frame, size) if spec.first_frame is not None else None
        sprites: list[_Sprite] = []
        if still is not None:
            backdrop = still
        else:
            gradient = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
            backdrop = ImageOps.colorize(gradient, top, bottom)
            sprites = _shape_sprites(digest, (accents[0], accents[1]), size)
        tint = None
        if spec.note:
            # A hue at least a third of the wheel away from the prompt's, so the change shows.
            tint = _hsv(_unit(digest, 0) + 0.33 + 0.34 * _unit(_digest(spec.note, 2), 0), 0.8, 0.5)
        if tint is not None:
            backdrop = Image.blend(backdrop, Image.new("RGB", size, tint), _TINT_STRENGTH)
        sprites += _character_sprites(spec.characters, size)
        focus = (0.25 + 0.5 * _unit(digest, 45), 0.25 + 0.5 * _unit(digest, 46))
        return cls(spec, backdrop, still, focus, sprites, _Overlay.build(spec, tint), accents[0])

    def frames(self) -> Iterator[Image.Image]:
        zoomed, zoomed_at = self.backdrop, 0
        every = max(1, self.spec.fps // _ZOOM_STEPS_PER_SECOND)
        for index in range(self.spec.frame_count):
            if self.still is None:
                yield self._compose(self.backdrop.copy(), index)
            elif index == 0:
                yield self.still
            else:
                # A zoom step costs more than the rest of a frame; a dozen steps a second keeps
                # first-frame clips near the render budget and still reads as smooth motion.
                if zoomed_at == 0 or index - zoomed_at >= every:
                    zoomed, zoomed_at = self._zoomed(index), index
                yield self._compose(zoomed.copy(), index)

    def _compose(self, frame: Image.Image, index: int) -> Image.Image:
        spec, size, t = self.spec, (self.spec.width, self.spec.height), index / self.spec.fps
        for sprite in self.sprites:
            frame.paste(sprite.image, sprite.position(t, size), sprite.image)
        for xy, patch in self.overlay.patches:
            frame.paste(patch, xy, patch)
        draw = ImageDraw.Draw(frame)
        timecode = f"{_timecode(t)} / {_timecode(spec.seconds)}"
        draw.text(self.overlay.timecode_at, timecode, font=self.overlay.timecode_font, fill=_INK)
        filled = max(1, round(spec.width * (index + 1) / spec.frame_count))
        draw.rectangle((0, spec.height - _bar_height(spec), filled - 1, spec.height - 1), fill=self.accent)
        return frame

    def _zoomed(self, index: int) -> Image.Image:
        w, h = self.spec.width, self.spec.height
        zoom = 1 + _ZOOM * index / max(1, self.spec.frame_count - 1)
        crop_w, crop_h = w / zoom, h / zoom
        # The crop centre drifts from the middle towards the focus, never leaving the image.
        cx = w / 2 + (self.focus[0] - 0.5) * (w - crop_w)
        cy = h / 2 + (self.focus[1] - 0.5) * (h - crop_h)
        box = (cx - crop_w / 2, cy - crop_h / 2, cx + crop_w / 2, cy + crop_h / 2)
        return self.backdrop.resize((w, h), Image.Resampling.BILINEAR, box=box)


def _fit(data: bytes, size: tuple[int, int]) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = opened.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"first_frame is not a readable PNG/JPEG/WebP image: {exc}") from exc
    if image.size == size:
        return image
    return ImageOps.fit(image, size, Image.Resampling.LANCZOS, centering=(0.5, 0.5))
