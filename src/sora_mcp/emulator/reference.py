"""`input_reference` checks: image bytes from an upload, a data URL, an https URL or a file id.

The service takes JPEG, PNG or WebP (judged by magic bytes, not by the declared type), at most
`catalog.IMAGE_MAX_BYTES`, with the exact pixel size of the requested video. The emulator cannot
fetch the internet, so a plain https URL is accepted and stands for a generated placeholder
picture of the right size (saying which URL it stands for).
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

from PIL import Image, ImageDraw, UnidentifiedImageError

from sora_mcp import catalog
from sora_mcp.emulator.envelope import WireError, bad_request
from sora_mcp.emulator.store import EmulatorStore
from sora_mcp.media.images import sniff_image

PARAM = "input_reference"


def check_image(data: bytes, size: str, *, param: str = PARAM) -> bytes:
    """The image bytes unchanged if the service would take them for a video of `size`.

    Raises WireError 400 (with `param`) naming what is wrong and what is allowed.
    """
    if len(data) > catalog.IMAGE_MAX_BYTES:
        raise bad_request(
            f"The reference image is {len(data)} bytes; "
            f"the limit is {catalog.IMAGE_MAX_BYTES} bytes (20 MB).",
            param=param,
            code="image_too_large",
        )
    kind = sniff_image(data)
    if kind is None:
        raise bad_request(
            "The reference image must be a JPEG, PNG or WebP file; these bytes are none of them.",
            param=param,
            code="invalid_image_format",
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError) as exc:
        raise bad_request(
            f"The reference image looks like {kind.upper()} but cannot be decoded: {exc}.",
            param=param,
            code="invalid_image",
        ) from exc
    if f"{width}x{height}" != size:
        raise bad_request(
            f"The reference image is {width}x{height} but the video size is {size}; "
            f"resize or crop the image to exactly {size} pixels.",
            param=param,
            code="invalid_image_dimensions",
        )
    return data


def decode_data_url(url: str, *, param: str) -> bytes:
    """The bytes of a base64 `data:` URL. Raises WireError 400 for any other shape."""
    header, sep, payload = url.partition(",")
    if not sep or not header.endswith(";base64"):
        raise bad_request(
            "A data URL reference must look like 'data:image/png;base64,<base64 bytes>'.",
            param=param,
            code="invalid_image_url",
        )
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad_request(
            "The data URL's payload is not valid base64.", param=param, code="invalid_image_url"
        ) from exc


def placeholder_frame(url: str, size: str) -> bytes:
    """A PNG of exactly `size` standing in for an image the emulator cannot download."""
    width, height = catalog.parse_size(size)
    image = Image.new("RGB", (width, height), (38, 70, 110))
    draw = ImageDraw.Draw(image)
    step = max(width, height) // 8
    for offset in range(0, width + height, step):
        draw.line([(offset, 0), (offset - height, height)], fill=(60, 100, 150), width=max(2, step // 6))
    draw.rectangle([width // 10, height // 2 - 40, width - width // 10, height // 2 + 40], fill=(20, 30, 45))
    draw.text((width // 10 + 12, height // 2 - 30), "image_url (not downloaded):", fill=(230, 230, 230))
    draw.text((width // 10 + 12, height // 2), url[:60], fill=(255, 210, 120))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def resolve_reference_object(value: Any, size: str, store: EmulatorStore, *, param: str = PARAM) -> bytes:
    """Image bytes for a JSON reference `{"image_url": …}` or `{"file_id": …}` (exactly one)."""
    if not isinstance(value, dict):
        raise bad_request(
            "input_reference must be an uploaded file, or an object with either 'image_url' or 'file_id'.",
            param=param,
            code="invalid_type",
        )
    unknown = sorted(set(value) - {"image_url", "file_id"})
    if unknown:
        raise bad_request(
            f"Unknown parameter: '{param}.{unknown[0]}'.",
            param=f"{param}.{unknown[0]}",
            code="unknown_parameter",
        )
    if ("image_url" in value) == ("file_id" in value):
        raise bad_request(
            "input_reference must have exactly one of 'image_url' or 'file_id'.",
            param=param,
            code="invalid_value",
        )
    if "file_id" in value:
        return _from_file(value["file_id"], size, store, param=f"{param}.file_id")
    return _from_url(value["image_url"], size, param=f"{param}.image_url")


def _from_url(url: Any, size: str, *, param: str) -> bytes:
    if not isinstance(url, str):
        raise bad_request(f"Invalid type for '{param}': expected a string.", param=param, code="invalid_type")
    if url.startswith("data:"):
        return check_image(decode_data_url(url, param=param), size, param=param)
    if url.startswith("https://") and len(url) > len("https://"):
        return placeholder_frame(url, size)
    raise bad_request(
        "image_url must be an https URL or a base64 data URL (data:image/...;base64,...).",
        param=param,
        code="invalid_image_url",
    )


def _from_file(file_id: Any, size: str, store: EmulatorStore, *, param: str) -> bytes:
    if not isinstance(file_id, str):
        raise bad_request(f"Invalid type for '{param}': expected a string.", param=param, code="invalid_type")
    record = store.get_file(file_id)
    if record is None:
        raise WireError(
            400,
            f"No file found with id '{file_id}'; upload it to /v1/files first.",
            param=param,
            code="file_not_found",
        )
    return check_image(store.file_content_path(file_id).read_bytes(), size, param=param)
