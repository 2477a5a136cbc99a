"""A YUV 4:2:0 canvas: the emulator composes its frames in the encoder's own pixel format.

Converting each finished RGB frame to yuv420p cost more than encoding it, so nothing is
converted per frame here: every picture (backdrop, sprite, caption, badge) becomes a `Layer`
once per clip, and a frame is the clip's static planes copied into the encoder's frame buffer
with the moving layers blended over the few rectangles they cover.

Colours follow BT.601 limited range, what swscale (and so PyAV's decoder and most players)
assumes for untagged H.264. Blending in YUV equals blending in RGB: the conversion is affine.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import av.video.plane
import numpy as np
from numpy.typing import NDArray
from PIL import Image

U8 = NDArray[np.uint8]
U16 = NDArray[np.uint16]
F32 = NDArray[np.float32]
Box = tuple[int, int, int, int]  # left, top, right, bottom (exclusive), in luma pixels
Rgb = tuple[int, int, int]

_MATRIX = np.array(
    [
        [0.256788, 0.504129, 0.097906],
        [-0.148223, -0.290993, 0.439216],
        [0.439216, -0.367788, -0.071427],
    ],
    dtype=np.float32,
)
_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float32)


@dataclass(frozen=True)
class Planes:
    """A picture as three uint8 planes: luma at full size, both chroma planes at half."""

    y: U8
    u: U8
    v: U8

    @property
    def size(self) -> tuple[int, int]:
        return self.y.shape[1], self.y.shape[0]

    def copy(self) -> Planes:
        return Planes(self.y.copy(), self.u.copy(), self.v.copy())

    def paste(self, source: Planes, box: Box) -> None:
        """Copy the `box` of `source` (same size as this picture) into this one."""
        left, top, right, bottom = box
        self.y[top:bottom, left:right] = source.y[top:bottom, left:right]
        chroma = (slice(top // 2, (bottom + 1) // 2), slice(left // 2, (right + 1) // 2))
        self.u[chroma] = source.u[chroma]
        self.v[chroma] = source.v[chroma]

    def fill(self, box: Box, colour: tuple[int, int, int]) -> None:
        """Paint `box` in an opaque YUV colour (see `yuv_of`)."""
        left, top, right, bottom = box
        self.y[top:bottom, left:right] = colour[0]
        chroma = (slice(top // 2, (bottom + 1) // 2), slice(left // 2, (right + 1) // 2))
        self.u[chroma] = colour[1]
        self.v[chroma] = colour[2]

    def lerp(self, other: Planes, weight: float) -> Planes:
        """A new picture `weight` of the way from this one to `other` (a cross-fade)."""
        return Planes(
            *(_mix(a, b, weight) for a, b in ((self.y, other.y), (self.u, other.u), (self.v, other.v)))
        )

    def to_image(self) -> Image.Image:
        frame = av.VideoFrame(self.size[0], self.size[1], "yuv420p")
        write_planes(frame, self)
        return frame.to_image()  # type: ignore[no-untyped-call, no-any-return]  # PyAV stub lacks types


@dataclass(frozen=True)
class Layer:
    """An RGBA picture converted once for blending, in 7-bit fixed point: what the background
    keeps, (1 - alpha) * 128, and the premultiplied colour, Y * alpha * 128 (plus 64, so the
    final shift rounds), at full resolution for luma and half for chroma. Integer blending is
    about three times faster than float here, and limited-range values (16-240) cannot
    overflow 16 bits. The size is even so the layer sits on whole chroma samples."""

    y_add: U16
    y_keep: U16
    u_add: U16
    v_add: U16
    c_keep: U16

    @property
    def size(self) -> tuple[int, int]:
        return self.y_add.shape[1], self.y_add.shape[0]


def yuv_of(colour: Rgb) -> tuple[int, int, int]:
    y, u, v = (np.asarray(colour, dtype=np.float32) @ _MATRIX.T + _OFFSET).round().clip(0, 255)
    return int(y), int(u), int(v)


def planes_of(image: Image.Image) -> Planes:
    """The opaque RGB picture `image` (even size) as planes; chroma is the mean of each 2x2 block."""
    y, u, v = _yuv(np.asarray(image.convert("RGB"), dtype=np.float32))
    return Planes(_to_u8(y), _to_u8(_half(u)), _to_u8(_half(v)))


def gradient_planes(size: tuple[int, int], top: Rgb, bottom: Rgb) -> Planes:
    """A vertical gradient from `top` to `bottom` (the first and last rows), made row by row
    in YUV: a 1080p backdrop costs a few milliseconds instead of a colourise and a conversion."""
    width, height = size

    def rows(count: int, first: float, last: float) -> F32:
        weights = np.linspace(0.0, 1.0, count, dtype=np.float32)
        return first + (last - first) * weights

    start, end = yuv_of(top), yuv_of(bottom)
    luma = rows(height, start[0], end[0])
    # Chroma rows sit between two luma rows: their mean, as `planes_of` would give.
    half = [_pairs(rows(height, start[k], end[k])) for k in (1, 2)]
    planes = [
        np.ascontiguousarray(np.broadcast_to(_to_u8(column)[:, None], (len(column), cols)))
        for column, cols in ((luma, width), (half[0], width // 2), (half[1], width // 2))
    ]
    return Planes(planes[0], planes[1], planes[2])


def solid_planes(size: tuple[int, int], colour: Rgb) -> Planes:
    y, u, v = yuv_of(colour)
    half = (size[1] // 2, size[0] // 2)
    return Planes(
        np.full((size[1], size[0]), y, np.uint8), np.full(half, u, np.uint8), np.full(half, v, np.uint8)
    )


def layer_of(image: Image.Image) -> Layer:
    """An RGBA picture as a `Layer`, padded with transparency to an even size."""
    pixels = np.asarray(_even(image if image.mode == "RGBA" else image.convert("RGBA")), dtype=np.float32)
    alpha = pixels[..., 3] / 255.0
    y, u, v = _yuv(pixels[..., :3])
    # Chroma weighted by coverage, so a half-covered 2x2 block takes the layer's colour rather
    # than a mix with the transparent pixels' (meaningless) colour.
    half_alpha = _half(alpha)
    return _layer(y * alpha, alpha, _half(u * alpha), _half(v * alpha), half_alpha)


def mask_layer(mask: Image.Image, colour: Rgb) -> Layer:
    """A one-colour layer whose alpha is the "L" picture `mask` (text): cheaper than `layer_of`."""
    alpha = np.asarray(_even(mask), dtype=np.float32) / 255.0
    y, u, v = yuv_of(colour)
    half_alpha = _half(alpha)
    return _layer(alpha * y, alpha, half_alpha * u, half_alpha * v, half_alpha)


def _layer(y_add: F32, alpha: F32, u_add: F32, v_add: F32, half_alpha: F32) -> Layer:
    def fixed(values: F32, offset: float = 0.0) -> U16:
        return (values * 128.0 + (0.5 + offset)).astype(np.uint16)

    return Layer(
        fixed(y_add, 64), 128 - fixed(alpha), fixed(u_add, 64), fixed(v_add, 64), 128 - fixed(half_alpha)
    )


def _even(image: Image.Image) -> Image.Image:
    if image.width % 2 == 0 and image.height % 2 == 0:
        return image
    padded = Image.new(image.mode, (image.width + image.width % 2, image.height + image.height % 2))
    padded.paste(image, (0, 0))
    return padded


def blend(
    target: Planes, layer: Layer, at: tuple[int, int], *, clip: Box | None = None, opacity: float = 1.0
) -> None:
    """Composite `layer` over `target` with its top-left corner at `at` (rounded down to even
    coordinates), inside `clip` (default: the whole picture)."""
    x, y = at[0] & ~1, at[1] & ~1
    width, height = target.size
    left, top, right, bottom = clip or (0, 0, width, height)
    left, top = max(left & ~1, x, 0), max(top & ~1, y, 0)
    right = min(right + (right & 1), x + layer.size[0], width)
    bottom = min(bottom + (bottom & 1), y + layer.size[1], height)
    if left >= right or top >= bottom:
        return
    inside = (slice(top - y, bottom - y), slice(left - x, right - x))
    _over(target.y[top:bottom, left:right], layer.y_add[inside], layer.y_keep[inside], opacity)
    half = (slice((top - y) // 2, (bottom - y) // 2), slice((left - x) // 2, (right - x) // 2))
    chroma = (slice(top // 2, bottom // 2), slice(left // 2, right // 2))
    _over(target.u[chroma], layer.u_add[half], layer.c_keep[half], opacity)
    _over(target.v[chroma], layer.v_add[half], layer.c_keep[half], opacity)


def box_of(layer: Layer, at: tuple[int, int], size: tuple[int, int]) -> Box | None:
    """The part of the picture (of `size`) that `layer` placed at `at` covers, or None."""
    x, y = at[0] & ~1, at[1] & ~1
    box = (max(0, x), max(0, y), min(size[0], x + layer.size[0]), min(size[1], y + layer.size[1]))
    return box if box[0] < box[2] and box[1] < box[3] else None


def new_frame(size: tuple[int, int]) -> tuple[av.VideoFrame, Planes]:
    """A yuv420p frame for the encoder and writable views of its planes (no copy)."""
    frame = av.VideoFrame(size[0], size[1], "yuv420p")
    y, u, v = (_view(plane) for plane in frame.planes)
    return frame, Planes(y, u, v)


def write_planes(frame: av.VideoFrame, planes: Planes) -> None:
    for plane, source in zip(frame.planes, (planes.y, planes.u, planes.v), strict=True):
        _view(plane)[...] = source


def resize_planes(planes: Planes, size: tuple[int, int], box: tuple[float, float, float, float]) -> Planes:
    """The part `box` of `planes` (in luma pixels) scaled to `size`, plane by plane (a zoom)."""
    half = (size[0] // 2, size[1] // 2)
    chroma_box = (box[0] / 2, box[1] / 2, box[2] / 2, box[3] / 2)

    def scaled(plane: U8, to: tuple[int, int], within: tuple[float, float, float, float]) -> U8:
        image = Image.fromarray(plane).resize(to, Image.Resampling.BILINEAR, box=within)
        return np.asarray(image, dtype=np.uint8).copy()

    return Planes(
        scaled(planes.y, size, box), scaled(planes.u, half, chroma_box), scaled(planes.v, half, chroma_box)
    )


def _over(target: U8, add: U16, keep: U16, opacity: float) -> None:
    if opacity < 1.0:
        # The layer's alpha scaled by `opacity`: keep' = 128 - (128 - keep) * opacity.
        keep = (128.0 - (128.0 - keep) * opacity + 0.5).astype(np.uint16)
        add = ((add - 64.0) * opacity + 64.5).astype(np.uint16)
    mixed = target * keep
    mixed += add
    mixed >>= 7
    target[...] = mixed


def _mix(a: U8, b: U8, weight: float) -> U8:
    return _to_u8(a * np.float32(1.0 - weight) + b * np.float32(weight))


def _yuv(rgb: F32) -> tuple[F32, F32, F32]:
    """Luma and both chroma values of an (h, w, 3) RGB array, at full resolution."""
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y, u, v = (
        red * row[0] + green * row[1] + blue * row[2] + offset
        for row, offset in zip(_MATRIX, _OFFSET, strict=True)
    )
    return y, u, v


def _half(values: F32) -> F32:
    """Each 2x2 block's mean (the first two axes must be even)."""
    total = values[0::2, 0::2] + values[1::2, 0::2]
    total += values[0::2, 1::2]
    total += values[1::2, 1::2]
    total *= np.float32(0.25)
    return total


def _pairs(values: F32) -> F32:
    """The mean of each pair of neighbours of a 1-D array of even length."""
    total = values[0::2] + values[1::2]
    total *= np.float32(0.5)
    return total


def _to_u8(values: F32) -> U8:
    clipped: F32 = np.clip(values + np.float32(0.5), 0, 255)
    return clipped.astype(np.uint8)


def _view(plane: av.video.plane.VideoPlane) -> U8:
    """A writable numpy view of a frame plane, cropped to its pixels (rows may be padded)."""
    rows = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(-1, plane.line_size)
    return rows[: plane.height, : plane.width]
