"""The three forms an image reference (`input_reference`) takes on the wire."""

from __future__ import annotations

from dataclasses import dataclass


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
