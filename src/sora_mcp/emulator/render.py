"""Real media for simulated jobs: an H.264 MP4 per job, plus its WebP thumbnail and JPEG
spritesheet, so every client code path (download, probe, play) meets genuine files offline.

A clip is a deterministic function of its `RenderSpec`. The palette (four colours) and the
motion of the shapes come from a hash of the prompt's words (see `look`): the same prompt always
gives the same frames, different prompts look different at a glance. Every animated frame
carries a "SIMULATED" mark, the wrapped prompt, a running timecode, the model and video id, and
a progress bar. With a first frame, frame 0 is exactly that image and later frames zoom and pan
over it. Character names walk across the frame in badges; a note (an edit instruction, say)
tints the clip and shows as a banner.

Speed is part of the contract (the emulator renders on demand, and a user waits for it). Frames
are composed in the encoder's YUV format (see `canvas`): everything static is drawn and
converted once per clip, each frame copies it and blends only what moves over the rectangles it
covers, and `write_h264` encodes on other cores while the next frames are drawn.

Joining clips and making the thumbnail and spritesheet work on any video file, so they live in
`sora_mcp.media.video`; they are re-exported here so the emulator has one module to render with.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from sora_mcp.emulator import look
from sora_mcp.emulator.canvas import (
    U8,
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
from sora_mcp.media.video import (
    check_even_size,
    concat_videos,
    render_spritesheet,
    render_thumbnail,
    write_h264,
)

__all__ = ["RenderSpec", "concat_videos", "render_spritesheet", "render_thumbnail", "render_video"]

Rgb = look.Rgb
Placed = tuple[tuple[int, int], Layer]

_CAPTION_MAX_LINES = 3
_ZOOM = 0.12  # how far a first-frame clip has zoomed in by its last frame
_ZOOM_STEPS_PER_SECOND = 12  # see _Scene.frames
_TINT_STRENGTH = 0.5
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


@dataclass(frozen=True)
class _Overlay:
    """What sits on top of every animated frame: fixed layers and where the timecode goes."""

    layers: list[Placed]
    timecode_at: tuple[int, int]
    timecode_font: look.Font

    @classmethod
    def build(cls, spec: RenderSpec, tint: Rgb | None) -> _Overlay:
        w, h = spec.width, spec.height
        unit = min(w, h)
        margin, pad = max(3, round(unit * 0.03)), max(2, round(unit * 0.015))
        mark = look.text_box(["SIMULATED"], look.font(max(9, round(unit * 0.055))), (*_MARK_RED, 235), pad)
        small = look.font(max(8, round(unit * 0.038)))
        room = w - mark.width - 3 * margin - 2 * pad
        label = look.ellipsize(" · ".join(filter(None, (spec.model, spec.video_id))), small, room)
        total = look.timecode(spec.seconds)
        # The timecode's line is left blank here and drawn per frame into the reserved space.
        width = round(max(small.getlength(label), small.getlength(f"{total} / {total}"))) + 2 * pad
        corner = look.text_box([label, ""], small, look.SHADE, pad, width)
        corner_xy = (w - margin - corner.width, margin)
        placed: list[tuple[tuple[int, int], Image.Image]] = [((margin, margin), mark), (corner_xy, corner)]
        if spec.note:
            font = look.font(max(9, round(unit * 0.045)))
            note = look.ellipsize(spec.note, font, w - 2 * (margin + pad))
            banner = look.text_box([note], font, (*(tint or _MARK_RED), 225), pad)
            placed.append(((margin, margin + max(mark.height, corner.height) + pad), banner))
        font = look.font(max(9, round(unit * 0.05)))
        lines = look.wrap(spec.prompt, font, w - 2 * (margin + pad), _CAPTION_MAX_LINES)
        caption = look.text_box(lines, font, look.SHADE, pad, w - 2 * margin)
        placed.append(((margin, h - margin - caption.height - _bar_height(spec)), caption))
        timecode_at = (corner_xy[0] + pad, corner_xy[1] + pad + look.line_height(small) + pad // 2)
        return cls([(xy, layer_of(image)) for xy, image in placed], timecode_at, small)


def _bar_height(spec: RenderSpec) -> int:
    height = max(2, min(spec.width, spec.height) // 60)
    return height + height % 2  # whole chroma rows


# --- the scene: backdrop, then sprites, then overlay, frame by frame -------------------------


@dataclass(frozen=True)
class _Scene:
    spec: RenderSpec
    backdrop: Planes  # the static background, or the (tinted) first frame to zoom over
    still: Planes | None  # frame 0 verbatim, when the spec gives a first frame
    focus: tuple[float, float]  # where a first-frame zoom heads, as fractions of the frame
    sprites: list[tuple[look.Sprite, Layer]]
    overlay: _Overlay
    accent: tuple[int, int, int]  # the progress bar's colour, as YUV
    masks: dict[str, U8] = field(default_factory=dict)  # drawn pieces of the timecode

    @classmethod
    def build(cls, spec: RenderSpec) -> _Scene:
        size = (spec.width, spec.height)
        words = look.digest(spec.prompt)
        top, bottom, *accents = look.palette(words)
        still = planes_of(_fit(spec.first_frame, size)) if spec.first_frame is not None else None
        sprites: list[look.Sprite] = []
        if still is not None:
            backdrop = still
        else:
            backdrop = gradient_planes(size, top, bottom)
            sprites = look.shape_sprites(words, (accents[0], accents[1]), size)
        tint = None
        if spec.note:
            # A hue at least a third of the wheel away from the prompt's, so the change shows.
            tint = look.hsv(
                look.unit(words, 0) + 0.33 + 0.34 * look.unit(look.digest(spec.note, 2), 0), 0.8, 0.5
            )
            backdrop = backdrop.lerp(solid_planes(size, tint), _TINT_STRENGTH)
        sprites += look.character_sprites(spec.characters, size)
        focus = (0.25 + 0.5 * look.unit(words, 45), 0.25 + 0.5 * look.unit(words, 46))
        return cls(
            spec,
            backdrop,
            still,
            focus,
            [(sprite, layer_of(sprite.image)) for sprite in sprites],
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
        for index in range(self.spec.frame_count):
            if self.still is not None:
                if index == 0:
                    frame, planes = new_frame(self.size)
                    planes.paste(self.still, (0, 0, *self.size))
                    yield frame
                    continue
                # A zoom step costs more than the rest of a frame; a dozen steps a second keeps
                # first-frame clips near the render budget and still reads as smooth motion.
                if zoomed_at == 0 or index - zoomed_at >= every:
                    backdrop, zoomed_at = self._zoomed(index), index
                    static = self._with_overlay(backdrop)
            yield self._compose(backdrop, static, index)

    def _with_overlay(self, backdrop: Planes) -> Planes:
        planes = backdrop.copy()
        for xy, layer in self.overlay.layers:
            blend(planes, layer, xy)
        return planes

    def _compose(self, backdrop: Planes, static: Planes, index: int) -> av.VideoFrame:
        spec, size, t = self.spec, self.size, index / self.spec.fps
        frame, planes = new_frame(size)
        planes.paste(static, (0, 0, *size))
        placed = [(sprite.position(t, size), layer) for sprite, layer in self.sprites]
        # Only where a sprite is does the frame differ from the static picture: there the
        # backdrop is restored and every sprite and overlay layer is blended again, in order.
        for at, layer in placed:
            box = box_of(layer, at, size)
            if box is None:
                continue
            planes.paste(backdrop, box)
            for other_at, other in placed:
                blend(planes, other, other_at, clip=box)
            for xy, over in self.overlay.layers:
                blend(planes, over, xy, clip=box)
        blend(planes, self._timecode(t), self.overlay.timecode_at)
        filled = max(1, round(spec.width * (index + 1) / spec.frame_count))
        planes.fill((0, spec.height - _bar_height(spec), filled, spec.height), self.accent)
        return frame

    def _timecode(self, t: float) -> Layer:
        # Drawn from pieces cached per clip: the minutes and seconds change once a second, the
        # hundredths repeat every second (t = index / fps), the total never changes.
        stamp = look.timecode(t)
        pieces = (stamp[:6], stamp[6:], f" / {look.timecode(self.spec.seconds)}")
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


def _fit(data: bytes, size: tuple[int, int]) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = opened.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"first_frame is not a readable PNG/JPEG/WebP image: {exc}") from exc
    if image.size == size:
        return image
    return ImageOps.fit(image, size, Image.Resampling.LANCZOS, centering=(0.5, 0.5))
