"""Real media for simulated jobs: an H.264 MP4 with an AAC track per job, plus its WebP
thumbnail and JPEG spritesheet, so every client code path (download, probe, play) meets
genuine files offline.

A clip is a deterministic function of its `RenderSpec`, and looks like what it stands for: a
colour word in the prompt sets the palette ("a red sports car" is red; otherwise the hue comes
from a hash of the words, see `look`), shapes drift the way the words say, characters walk in
badges marked with what they are (`cast`), and the sound is an ambience and a chord from the
words, with any quoted line "spoken" as a rhythm (`sound`). Every animated frame carries a
"SIMULATED" mark, the model and video id, a running timecode, a compact caption of the prompt
in the lower-left corner (the subject stays visible), and a progress bar. With a first frame,
frame 0 is exactly that image and later frames zoom and pan over it. A note (an edit
instruction) tints the clip and shows as a banner. A clip that continues another (an
extension's new segment) starts on that clip's last picture and dissolves into its own, with
the timecode and bar running on across the whole video.

Speed is part of the contract (the emulator renders on demand, and a user waits for it). Frames
are composed in the encoder's YUV format (see `canvas`): everything static is drawn and
converted once per clip, each frame copies it and blends only what moves over the rectangles it
covers, and `write_h264` encodes on other cores while the next frames are drawn.

Joining clips and making the thumbnail and spritesheet work on any video file, so they live in
`sora_mcp.media.video`; they are re-exported here so the emulator has one module to render with.
"""

from __future__ import annotations

import colorsys
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from sora_mcp.emulator import cast, look, sound
from sora_mcp.emulator.canvas import (
    U8,
    Box,
    Layer,
    Planes,
    blend,
    box_of,
    gradient_planes,
    layer_of,
    mask_layer,
    new_frame,
    planes_of,
    resize_planes,
    solid_planes,
    yuv_of,
)
from sora_mcp.media.pictures import render_spritesheet, render_thumbnail
from sora_mcp.media.video import check_even_size, concat_videos, write_h264

__all__ = [
    "Layout",
    "RenderSpec",
    "concat_videos",
    "layout",
    "render_spritesheet",
    "render_thumbnail",
    "render_video",
]

Rgb = look.Rgb
Placed = tuple[tuple[int, int], Layer]
Moving = look.Sprite | cast.Walker

_CAPTION_MAX_LINES = 2
_CAPTION_MAX_WIDTH = 0.62  # of the frame's width, for landscape frames: the subject stays clear
_ZOOM = 0.12  # how far a first-frame clip has zoomed in by its last frame
_ZOOM_STEPS_PER_SECOND = 12  # see _Scene.frames
_DISSOLVE_SECONDS = 1.0  # a continuing clip fades from the clip before it over this long
_TINT_STRENGTH = 0.5
# Flat colours and large type survive x264's crf 28 intact; it encodes about a third faster
# than the default 23 and makes files a fifth smaller (quicker downloads).
_CRF = 28
_NAMED_TINT_STRENGTH = 0.75
_MARK_RED: Rgb = (205, 32, 44)


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
    # Image bytes of the picture this clip continues from (the last frame of the clip before
    # it in the same video): frame 0 shows it, then the clip dissolves into its own scene.
    lead_in: bytes | None = None
    # Where this clip sits in its video: (start, total) seconds; None is (0, seconds).
    timeline: tuple[float, float] | None = None

    @property
    def frame_count(self) -> int:
        return max(1, round(self.seconds * self.fps))

    @property
    def clock(self) -> tuple[float, float]:
        return self.timeline or (0.0, self.frame_count / self.fps)


def render_video(spec: RenderSpec, dest: Path) -> Image.Image:
    """Render `spec` to an H.264 MP4 with an AAC track at `dest` (atomically): exactly `width` x
    `height`, `round(seconds * fps)` frames, lasting `frame_count / fps` seconds, sound as long.
    Returns the last frame's picture without the overlay: what a continuing clip starts on.

    Raises:
        ValueError: odd or non-positive size, non-positive duration or fps, or `first_frame`
            or `lead_in` bytes that are not a readable image.
    """
    check_even_size(spec.width, spec.height)
    if spec.seconds <= 0 or spec.fps <= 0:
        raise ValueError(f"seconds and fps must be positive, got {spec.seconds} s at {spec.fps} fps")
    scene = _Scene.build(spec)
    words = " ".join(filter(None, (spec.prompt, spec.note)))
    audio = sound.soundtrack(words, spec.frame_count / spec.fps, start=spec.clock[0])
    size = {"width": spec.width, "height": spec.height}
    write_h264(dest, scene.frames(), **size, fps=spec.fps, audio=audio, crf=_CRF)
    return scene.ending()


@dataclass(frozen=True)
class Layout:
    """Where things sit in a frame, as (left, top, right, bottom) pixel boxes."""

    mark: Box
    corner: Box  # the model, the video id and the timecode
    caption: Box
    banner: Box | None
    badges: tuple[Box, ...]  # at the asked time


def layout(spec: RenderSpec, t: float = 0.0) -> Layout:
    """The layout of `spec`'s frame at `t` seconds into the clip (what the tests measure)."""
    scene = _Scene.build(spec)
    size = scene.size
    boxes = {name: _box(xy, layer) for name, (xy, layer) in scene.overlay.named.items()}
    badges = tuple(
        _box(mover.position(t, size), layer)
        for mover, layer in scene.movers
        if isinstance(mover, cast.Walker)
    )
    return Layout(boxes["mark"], boxes["corner"], boxes["caption"], boxes.get("banner"), badges)


def _box(at: tuple[int, int], layer: Layer) -> Box:
    return (at[0], at[1], at[0] + layer.size[0], at[1] + layer.size[1])


@dataclass(frozen=True)
class _Overlay:
    """What sits on top of every animated frame: fixed layers and where the timecode goes."""

    named: dict[str, Placed]
    timecode_at: tuple[int, int]
    timecode_font: look.Font

    @property
    def layers(self) -> list[Placed]:
        return list(self.named.values())

    @classmethod
    def build(cls, spec: RenderSpec, tint: Rgb | None) -> _Overlay:
        w, h = spec.width, spec.height
        unit = min(w, h)
        margin, pad = max(2, round(unit * 0.03)), max(2, round(unit * 0.012))
        inside = w - 2 * margin - 2 * pad  # the widest text that fits in a box inside the frame
        mark_font = _fitting("SIMULATED", round(unit * 0.05), inside)
        mark = look.text_box(["SIMULATED"], mark_font, (*_MARK_RED, 235), pad)
        total = look.timecode(spec.clock[1])
        small = _fitting(f"{total} / {total}", round(unit * 0.034), inside)
        clock_width = round(small.getlength(f"{total} / {total}"))
        beside = w - mark.width - 3 * margin - 2 * pad  # room for the label right of the mark
        stacked = beside < clock_width  # a narrow frame puts the corner box under the mark
        room = inside if stacked else beside
        label = look.ellipsize(" · ".join(filter(None, (spec.model, spec.video_id))), small, room)
        # The timecode's line is left blank here and drawn per frame into the reserved space.
        corner = look.text_box(
            [label, ""], small, look.SHADE, pad, max(round(small.getlength(label)), clock_width) + 2 * pad
        )
        corner_xy = (margin, 2 * margin + mark.height) if stacked else (w - margin - corner.width, margin)
        named: dict[str, tuple[tuple[int, int], Image.Image]] = {
            "mark": ((margin, margin), mark),
            "corner": (corner_xy, corner),
        }
        below = max(margin + mark.height, corner_xy[1] + corner.height) + pad
        if spec.note:
            font = look.font(max(8, round(unit * 0.038)))
            note = look.ellipsize(spec.note, font, inside)
            named["banner"] = ((margin, below), look.text_box([note], font, (*(tint or _MARK_RED), 225), pad))
        # The caption: two lines at most of small type in the lower-left corner, boxed to fit.
        font, tight = look.font(max(8, round(unit * 0.03))), max(2, round(unit * 0.008))
        width = min(inside, max(unit * 0.9, w * _CAPTION_MAX_WIDTH))
        lines = look.wrap(spec.prompt, font, width, _CAPTION_MAX_LINES)
        caption = look.text_box(lines, font, look.SHADE, tight)
        named["caption"] = ((margin, h - margin // 2 - caption.height - _bar_height(spec)), caption)
        timecode_at = (corner_xy[0] + pad, corner_xy[1] + pad + look.line_height(small) + pad // 2)
        return cls({name: (xy, layer_of(image)) for name, (xy, image) in named.items()}, timecode_at, small)


def _fitting(text: str, size: int, width: int) -> look.Font:
    """The font of `size` px (at least 8), smaller if `text` would be wider than `width`."""
    size = max(8, size)
    font = look.font(size)
    while size > 6 and font.getlength(text) > width:
        size -= 1
        font = look.font(size)
    return font


def _bar_height(spec: RenderSpec) -> int:
    height = max(2, min(spec.width, spec.height) // 60)
    return height + height % 2  # whole chroma rows


# --- the scene: backdrop, then what moves, then overlay, frame by frame ------------------------


@dataclass(frozen=True)
class _Scene:
    spec: RenderSpec
    backdrop: Planes  # the static background, or the (tinted) first frame to zoom over
    still: Planes | None  # frame 0 verbatim, when the spec gives a first frame
    lead: Planes | None  # the picture a continuing clip dissolves from
    focus: tuple[float, float]  # where a first-frame zoom heads, as fractions of the frame
    movers: list[tuple[Moving, Layer]]
    overlay: _Overlay
    accent: tuple[int, int, int]  # the progress bar's colour, as YUV
    masks: dict[str, U8] = field(default_factory=dict)  # drawn pieces of the timecode
    last: list[tuple[Planes, float]] = field(default_factory=list)  # the final backdrop, opacity

    @classmethod
    def build(cls, spec: RenderSpec) -> _Scene:
        size = (spec.width, spec.height)
        words = look.digest(spec.prompt)
        top, bottom, *accents = look.palette(spec.prompt)
        still = (
            planes_of(_fit(spec.first_frame, size, "first_frame")) if spec.first_frame is not None else None
        )
        movers: list[Moving] = []
        if still is not None:
            backdrop = still
        else:
            backdrop = gradient_planes(size, top, bottom)
            movers = list(look.shape_sprites(words, (accents[0], accents[1]), size))
        tint = _tint(spec.note, top) if spec.note else None
        if tint is not None:
            # A colour the note names ("paint it gold") must win over the clip's own.
            named = spec.note is not None and bool(look.colour_words(spec.note))
            backdrop = backdrop.lerp(
                solid_planes(size, tint), _NAMED_TINT_STRENGTH if named else _TINT_STRENGTH
            )
        movers += cast.walkers(spec.characters, spec.prompt, size)
        focus = (0.25 + 0.5 * look.unit(words, 45), 0.25 + 0.5 * look.unit(words, 46))
        lead = planes_of(_fit(spec.lead_in, size, "lead_in")) if spec.lead_in is not None else None
        return cls(
            spec,
            backdrop,
            still,
            lead,
            focus,
            [(mover, layer_of(mover.image)) for mover in movers],
            _Overlay.build(spec, tint),
            yuv_of(accents[0]),
        )

    @property
    def size(self) -> tuple[int, int]:
        return self.spec.width, self.spec.height

    def frames(self) -> Iterator[av.VideoFrame]:
        backdrop, zoomed_at = self.backdrop, 0
        static = self._with_overlay(backdrop)
        every = max(1, self.spec.fps // _ZOOM_STEPS_PER_SECOND)
        dissolve = min(self.spec.frame_count, round(_DISSOLVE_SECONDS * self.spec.fps)) if self.lead else 0
        for index in range(self.spec.frame_count):
            if self.still is not None:
                if index == 0 and self.lead is None:
                    frame, planes = new_frame(self.size)
                    planes.paste(self.still, (0, 0, *self.size))
                    yield frame
                    continue
                # A zoom step costs more than the rest of a frame; a dozen steps a second keeps
                # first-frame clips near the render budget and still reads as smooth motion.
                if zoomed_at == 0 or index - zoomed_at >= every:
                    backdrop, zoomed_at = self._zoomed(index), index
                    static = self._with_overlay(backdrop)
            shown, seen, opacity = backdrop, static, 1.0
            if self.lead is not None and index < dissolve:
                opacity = _smooth(index / dissolve)
                shown = self.lead.lerp(backdrop, opacity)
                seen = self._with_overlay(shown)
            if index == self.spec.frame_count - 1:
                self.last.append((shown, opacity))
            yield self._compose(shown, seen, index, opacity)

    def ending(self) -> Image.Image:
        """The last frame without the overlay (after `frames` has run)."""
        backdrop, opacity = self.last[-1]
        picture = backdrop.copy()
        t = (self.spec.frame_count - 1) / self.spec.fps
        for mover, layer in self.movers:
            blend(picture, layer, mover.position(t, self.size), opacity=opacity)
        return picture.to_image()

    def _with_overlay(self, backdrop: Planes) -> Planes:
        planes = backdrop.copy()
        for xy, layer in self.overlay.layers:
            blend(planes, layer, xy)
        return planes

    def _compose(self, backdrop: Planes, static: Planes, index: int, opacity: float) -> av.VideoFrame:
        spec, size, t = self.spec, self.size, index / self.spec.fps
        frame, planes = new_frame(size)
        planes.paste(static, (0, 0, *size))
        placed = [(mover.position(t, size), layer) for mover, layer in self.movers]
        # Only where something moves does the frame differ from the static picture: there the
        # backdrop is restored and every moving and overlay layer is blended again, in order.
        for at, layer in placed:
            box = box_of(layer, at, size)
            if box is None:
                continue
            planes.paste(backdrop, box)
            for other_at, other in placed:
                blend(planes, other, other_at, clip=box, opacity=opacity)
            for xy, over in self.overlay.layers:
                blend(planes, over, xy, clip=box)
        start, total = spec.clock
        blend(planes, self._timecode(start + t, total), self.overlay.timecode_at)
        filled = max(1, min(spec.width, round(spec.width * (start + (index + 1) / spec.fps) / total)))
        planes.fill((0, spec.height - _bar_height(spec), filled, spec.height), self.accent)
        return frame

    def _timecode(self, t: float, total: float) -> Layer:
        # Drawn from pieces cached per clip: the minutes and seconds change once a second, the
        # hundredths repeat every second (t = index / fps), the total never changes.
        stamp = look.timecode(t)
        pieces = (stamp[:6], stamp[6:], f" / {look.timecode(total)}")
        masks = [self._text_mask(piece) for piece in pieces]
        font = self.overlay.timecode_font
        mask = np.zeros((masks[0].shape[0], round(font.getlength("".join(pieces))) + 2), dtype=np.uint8)
        for k, piece_mask in enumerate(masks):
            x = round(font.getlength("".join(pieces[:k])))
            width = min(piece_mask.shape[1], mask.shape[1] - x)
            np.maximum(mask[:, x : x + width], piece_mask[:, :width], out=mask[:, x : x + width])
        return mask_layer(Image.fromarray(mask), look.INK[:3])

    def _text_mask(self, text: str) -> U8:
        if text not in self.masks:
            font = self.overlay.timecode_font
            image = Image.new("L", (round(font.getlength(text)) + 2, look.line_height(font) + 2))
            ImageDraw.Draw(image).text((0, 0), text, font=font, fill=255)
            self.masks[text] = np.asarray(image, dtype=np.uint8)
        return self.masks[text]

    def _zoomed(self, index: int) -> Planes:
        w, h = self.size
        zoom = 1 + _ZOOM * index / max(1, self.spec.frame_count - 1)
        crop_w, crop_h = w / zoom, h / zoom
        # The crop centre drifts from the middle towards the focus, never leaving the image.
        cx = w / 2 + (self.focus[0] - 0.5) * (w - crop_w)
        cy = h / 2 + (self.focus[1] - 0.5) * (h - crop_h)
        box = (cx - crop_w / 2, cy - crop_h / 2, cx + crop_w / 2, cy + crop_h / 2)
        return resize_planes(self.backdrop, (w, h), box)


def _tint(note: str, top: Rgb) -> Rgb:
    """The colour an edit note tints the clip: its own colour word ("paint it blue"), else a hue
    at least a third of the wheel away from the clip's own, so the change shows."""
    named = [word for word in look.colour_words(note) if look.COLOURS.get(word) is not None]
    if named:
        return look.hsv(look.COLOURS[named[0]] or 0.0, 0.8, 0.55)
    hue = colorsys.rgb_to_hsv(*(c / 255 for c in top))[0]
    return look.hsv(hue + 0.33 + 0.34 * look.unit(look.digest(note, 2), 0), 0.8, 0.5)


def _smooth(x: float) -> float:
    return x * x * (3 - 2 * x)


def _fit(data: bytes, size: tuple[int, int], name: str) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = opened.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{name} is not a readable PNG/JPEG/WebP image: {exc}") from exc
    if image.size == size:
        return image
    return ImageOps.fit(image, size, Image.Resampling.LANCZOS, centering=(0.5, 0.5))
