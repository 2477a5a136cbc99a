"""Image references for a video's first frame: from a path, an https URL or a data URL, to
checked bytes fitted to the exact output size the Videos API demands.

Inputs are untrusted (a model chose them), so every form is size-capped before it is decoded,
the format is decided by magic bytes rather than by names or declared types, local paths are
confined to the configured roots, and decoding refuses decompression bombs.

Pillow is imported by the functions that decode, not by this module: the server imports this
module at start and answers `tools/list` without loading an imaging library.
"""

from __future__ import annotations

import base64
import binascii
import io
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import anyio.to_thread
import httpx2

from sora_mcp import catalog
from sora_mcp.errors import InvalidRequest
from sora_mcp.files import confine
from sora_mcp.media.netguard import Resolver, checked_address, pinned_request, system_resolve

if TYPE_CHECKING:
    from PIL import Image

FitMode = Literal["crop", "pad", "stretch"]

_MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
_EXTENSION = {"jpeg": "jpg", "png": "png", "webp": "webp"}
_PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
_ALLOWED = "JPEG, PNG or WebP"
_MAX_REDIRECTS = 5
# Whole-fetch time cap, redirects included: a slow-drip server must not hold a tool call.
_FETCH_SECONDS = 20.0
# Far above any output size (1920x1080 is about 2 MP) yet well below Pillow's own bomb limit, so
# an absurd image is refused from its header, before its pixels are decoded.
_MAX_PIXELS = 50_000_000
# Wrapped base64 (76 columns + CRLF) is about 3% longer than the bare alphabet.
_BASE64_SLACK = 1 / 32
_DESCRIPTION_MAX_CHARS = 200


@dataclass(frozen=True)
class PreparedImage:
    """An image ready to upload as `input_reference`, exactly `width` x `height`."""

    content: bytes
    mime_type: str
    filename: str
    width: int
    height: int
    source: str
    """Short description of where the image came from, for the registry (never the bytes)."""


def sniff_image(data: bytes) -> str | None:
    """The format named by the magic bytes at the start of `data` ("jpeg", "png", "webp"), else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def describe_image_ref(ref: str) -> str:
    """A short, secret-free description of an image reference for the registry: the path as
    given, a URL without its query, fragment or credentials, or just "data URL (N bytes)"."""
    ref = ref.strip()
    if ref[:5].lower() == "data:":
        return f"data URL (~{len(ref) * 3 // 4} bytes)"
    if "://" in ref:
        parts = urlsplit(ref)
        # Signed URLs carry their token in the query; credentials may sit before the host.
        text = f"{parts.scheme}://{parts.hostname or ''}{parts.path}"
    else:
        text = ref
    return text[:_DESCRIPTION_MAX_CHARS]


async def load_image(
    ref: str,
    *,
    roots: Sequence[Path],
    http: httpx2.AsyncClient | None,
    max_bytes: int = catalog.IMAGE_MAX_BYTES,
    resolve: Resolver = system_resolve,
) -> tuple[bytes, str]:
    """The bytes and MIME type of the image `ref` points to.

    `ref` is a local path (confined to `roots`), an https URL (fetched with `http`, redirects
    followed only to https, the body capped at `max_bytes` while streaming) or a base64 data URL
    (its length capped before decoding). The format comes from the magic bytes.

    Raises:
        InvalidRequest: any other scheme, no `http` client for a URL, a path outside the roots or
            unreadable, more than `max_bytes`, a failed fetch, or content that is not JPEG/PNG/WebP.
    """
    ref = ref.strip()
    if ref[:5].lower() == "data:":
        data = _decode_data_url(ref, max_bytes)
    elif "://" in ref:
        data = await _fetch(ref, http, max_bytes, resolve)
    else:
        data = await anyio.to_thread.run_sync(_read_file, ref, roots, max_bytes)
    kind = sniff_image(data)
    if kind is None:
        raise InvalidRequest(f"the image reference is not a {_ALLOWED} image (judged by its content)")
    return data, _MIME[kind]


def _too_big(max_bytes: int) -> InvalidRequest:
    return InvalidRequest(f"the image is larger than {max_bytes} bytes; use a smaller {_ALLOWED} file")


def _decode_data_url(ref: str, max_bytes: int) -> bytes:
    encoded_limit = 4 * ((max_bytes + 2) // 3)
    # Checked on the whole string first, so a huge payload costs nothing beyond its length.
    if len(ref) > encoded_limit * (1 + _BASE64_SLACK) + 256:
        raise _too_big(max_bytes)
    header, comma, payload = ref.partition(",")
    if not comma or not header.lower().endswith(";base64"):
        raise InvalidRequest("a data URL image must look like data:image/png;base64,<base64 data>")
    payload = "".join(payload.split())
    if len(payload) > encoded_limit:
        raise _too_big(max_bytes)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest("the data URL is not valid base64") from exc
    if len(data) > max_bytes:
        raise _too_big(max_bytes)
    return data


def _require_https(url: str) -> None:
    if urlsplit(url).scheme.lower() != "https":
        raise InvalidRequest(
            "image URLs must use https (http and other schemes are refused); "
            "or pass a local file path or a base64 data URL"
        )


async def _fetch(url: str, http: httpx2.AsyncClient | None, max_bytes: int, resolve: Resolver) -> bytes:
    _require_https(url)
    if http is None:
        raise InvalidRequest("image URLs cannot be fetched here; pass a local file path or a data URL")
    try:
        with anyio.fail_after(_FETCH_SECONDS):
            return await _fetch_hops(url, http, max_bytes, resolve)
    except TimeoutError as exc:
        raise InvalidRequest(
            f"the image URL took longer than {_FETCH_SECONDS:.0f} s; pass a local file"
        ) from exc
    except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
        raise InvalidRequest(f"the image URL could not be fetched ({type(exc).__name__})") from exc


async def _fetch_hops(url: str, http: httpx2.AsyncClient, max_bytes: int, resolve: Resolver) -> bytes:
    # Redirects are followed by hand so that every hop is held to the same rules: https, and
    # a public address that the connection is pinned to.
    for _ in range(_MAX_REDIRECTS + 1):
        address = await checked_address(url, resolve)
        response = await http.send(pinned_request(http, url, address), stream=True, follow_redirects=False)
        try:
            if response.is_redirect:
                url = str(httpx2.URL(url).join(response.headers.get("location", "")))
                _require_https(url)
                continue
            if response.status_code != 200:
                raise InvalidRequest(
                    f"the image URL answered HTTP {response.status_code}; check that it is public"
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _too_big(max_bytes)
            received = bytearray()
            async for chunk in response.aiter_bytes():
                received += chunk
                if len(received) > max_bytes:
                    raise _too_big(max_bytes)
            return bytes(received)
        finally:
            await response.aclose()
    raise InvalidRequest(f"the image URL redirected more than {_MAX_REDIRECTS} times")


def _exists(ref: str, roots: Sequence[Path]) -> bool:
    """Whether anything is at `ref` (relative to the first root); True when that cannot be told
    (a NUL byte, an unknown home), so `confine` gives its own refusal."""
    try:
        given = Path(ref).expanduser()
        return (Path(roots[0]) / given if roots and not given.is_absolute() else given).exists()
    except (OSError, ValueError, RuntimeError):
        return True


def _read_file(ref: str, roots: Sequence[Path], max_bytes: int) -> bytes:
    if not _exists(ref, roots):
        # Said before the folder check: "outside the folders" would send the user to change a
        # setting for a file that is not there at all.
        raise InvalidRequest(
            f"there is no file at {ref!r}; give the path of an existing {_ALLOWED} file",
            param="path",
            code="file_not_found",
        )
    path = confine(ref, roots)
    try:
        info = path.stat()
        # Refuse devices and FIFOs before opening: they may never end or block the open.
        if not stat.S_ISREG(info.st_mode):
            raise InvalidRequest(f"{path} is not a regular file")
        if info.st_size > max_bytes:
            raise _too_big(max_bytes)
        with path.open("rb") as file:
            data = file.read(max_bytes + 1)
    except FileNotFoundError as exc:
        raise InvalidRequest(f"there is no file at {path}", param="path", code="file_not_found") from exc
    except OSError as exc:
        raise InvalidRequest(f"the file {path} cannot be read ({type(exc).__name__})") from exc
    if len(data) > max_bytes:
        raise _too_big(max_bytes)
    return data


def fit_image(
    data: bytes,
    width: int,
    height: int,
    mode: FitMode = "crop",
    *,
    source: str = "image",
) -> PreparedImage:
    """`data` as an image of exactly `width` x `height`.

    An image already that size (and upright) is kept byte for byte. Otherwise it is turned
    upright (EXIF orientation), fitted by `mode` — "crop" fills and trims the overflow
    (centred), "pad" fits inside and fills the rest with black, "stretch" ignores the aspect
    ratio — flattened onto black if transparent, and encoded as PNG (lossless).

    Raises:
        InvalidRequest: not JPEG/PNG/WebP, undecodable, absurdly many pixels, bad size or mode.
    """
    if width < 1 or height < 1:
        raise InvalidRequest(f"the target size must be positive, got {width}x{height}")
    if mode not in ("crop", "pad", "stretch"):
        raise InvalidRequest(f"fit mode must be crop, pad or stretch, got {mode!r}")
    kind = sniff_image(data)
    if kind is None:
        raise InvalidRequest(f"the image reference is not a {_ALLOWED} image (judged by its content)")
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=[_PIL_FORMAT[kind]]) as img:
            if img.width * img.height > _MAX_PIXELS:
                raise InvalidRequest(f"the image has too many pixels ({img.width}x{img.height})")
            upright = img.getexif().get(0x0112, 1) == 1  # EXIF Orientation tag
            if img.size == (width, height) and upright:
                img.load()  # proves the bytes decode before we pass them on untouched
                return PreparedImage(
                    data, _MIME[kind], f"reference.{_EXTENSION[kind]}", width, height, source
                )
            fitted = _fit(img, width, height, mode)
    except Image.DecompressionBombError as exc:
        raise InvalidRequest("the image has too many pixels") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidRequest(f"the {kind.upper()} image could not be decoded; is it complete?") from exc
    out = io.BytesIO()
    fitted.save(out, format="PNG")
    return PreparedImage(out.getvalue(), "image/png", "reference.png", width, height, source)


def _fit(img: Image.Image, width: int, height: int, mode: FitMode) -> Image.Image:
    from PIL import Image, ImageOps

    oriented = ImageOps.exif_transpose(img)
    has_alpha = "A" in oriented.getbands() or "transparency" in oriented.info
    work = oriented.convert("RGBA" if has_alpha else "RGB")
    size = (width, height)
    resample = Image.Resampling.LANCZOS
    if mode == "crop":
        fitted = ImageOps.fit(work, size, method=resample)
    elif mode == "pad":
        fitted = ImageOps.pad(work, size, method=resample, color=(0, 0, 0, 0) if has_alpha else (0, 0, 0))
    else:
        fitted = work.resize(size, resample)
    if not has_alpha:
        return fitted
    # Video frames have no alpha: flatten onto black, the same colour as the padding.
    flat = Image.new("RGBA", size, (0, 0, 0, 255))
    flat.alpha_composite(fitted)
    return flat.convert("RGB")


async def prepare_image(
    ref: str,
    width: int,
    height: int,
    mode: FitMode = "crop",
    *,
    roots: Sequence[Path],
    http: httpx2.AsyncClient | None,
    max_bytes: int = catalog.IMAGE_MAX_BYTES,
    resolve: Resolver = system_resolve,
) -> PreparedImage:
    """`load_image` then `fit_image` (in a worker thread), with `source` describing `ref`.

    Raises:
        InvalidRequest: as `load_image` and `fit_image`.
    """
    data, _ = await load_image(ref, roots=roots, http=http, max_bytes=max_bytes, resolve=resolve)
    return await anyio.to_thread.run_sync(
        lambda: fit_image(data, width, height, mode, source=describe_image_ref(ref))
    )
