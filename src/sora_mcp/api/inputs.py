"""The three forms an image reference (`input_reference`) takes on the wire, and OpenRouter's body."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sora_mcp.errors import InvalidRequest


@dataclass(frozen=True)
class ImageUpload:
    """Image bytes sent as a multipart file part; forces a multipart create request."""

    content: bytes
    filename: str
    mime_type: str

    def __repr__(self) -> str:
        # Never dump megabytes of image into logs or tracebacks.
        size = len(self.content)
        return f"ImageUpload(filename={self.filename!r}, mime_type={self.mime_type!r}, {size} bytes)"


@dataclass(frozen=True)
class ImageURL:
    """An https URL or a base64 `data:` URL; sent as `{"image_url": url}`."""

    url: str

    def __repr__(self) -> str:
        shown = self.url if len(self.url) <= 80 else f"{self.url[:60]}…({len(self.url)} chars)"
        return f"ImageURL({shown!r})"


@dataclass(frozen=True)
class FileRef:
    """An image already uploaded to the backend's Files API; sent as `{"file_id": id}`."""

    file_id: str


ImageReference = ImageUpload | ImageURL | FileRef

# OpenRouter names a size by its resolution and aspect ratio.
_OPENROUTER_SHAPES = {
    "1280x720": ("720p", "16:9"),
    "720x1280": ("720p", "9:16"),
    "1920x1080": ("1080p", "16:9"),
    "1080x1920": ("1080p", "9:16"),
}


def openrouter_body(body: Mapping[str, Any], reference: ImageReference | None) -> dict[str, Any]:
    """A contract create body in OpenRouter's words: `duration` (int), `resolution` and
    `aspect_ratio`, the first frame in `frame_images`, and no fallback to another provider
    (which would start, and bill, a second job for one request)."""
    out: dict[str, Any] = {k: v for k, v in body.items() if k not in ("seconds", "size", "input_reference")}
    if "seconds" in body:
        out["duration"] = int(body["seconds"])
    if "size" in body:
        shape = _OPENROUTER_SHAPES.get(str(body["size"]))
        if shape is None:
            sizes = ", ".join(_OPENROUTER_SHAPES)
            raise InvalidRequest(f"OpenRouter takes sizes {sizes}; got {body['size']!r}.", param="size")
        out["resolution"], out["aspect_ratio"] = shape
    url: str | None = None
    if isinstance(reference, ImageURL):
        url = reference.url
    elif isinstance(reference, ImageUpload):
        url = f"data:{reference.mime_type};base64,{base64.b64encode(reference.content).decode()}"
    elif isinstance(reference, FileRef):
        raise InvalidRequest("OpenRouter takes no uploaded file as the first frame; give an image.")
    if url is not None:
        out["frame_images"] = [{"type": "image_url", "image_url": {"url": url}}]
    out["provider"] = {"allow_fallbacks": False}
    return out
