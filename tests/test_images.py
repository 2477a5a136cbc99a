from __future__ import annotations

import base64
import io
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx2
import pytest
from PIL import Image

from sora_mcp.errors import InvalidRequest
from sora_mcp.media import images
from sora_mcp.media.images import describe_image_ref, fit_image, load_image, prepare_image, sniff_image


def _image(
    fmt: str, size: tuple[int, int] = (32, 16), colour: object = (200, 30, 30), mode: str = "RGB"
) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, colour).save(out, format=fmt)  # type: ignore[arg-type]
    return out.getvalue()


def _decoded(content: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(content))
    img.load()
    return img


PUBLIC_IP = "93.184.216.34"


async def _public(host: str, port: int) -> list[str]:
    """A resolver for tests: every host is one public address (no DNS here)."""
    return [PUBLIC_IP]


def _client(handler: Callable[[httpx2.Request], httpx2.Response]) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.MockTransport(handler))


def _no_request(request: httpx2.Request) -> httpx2.Response:
    raise AssertionError(f"unexpected request to {request.url}")


def _png_header_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("fmt", "kind"), [("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp")])
def test_formats_are_recognised_by_magic_bytes(fmt: str, kind: str) -> None:
    assert sniff_image(_image(fmt)) == kind


@pytest.mark.parametrize("data", [b"", b"GIF89a....", b"RIFF\x00\x00\x00\x00WAVE", b"<svg/>"])
def test_other_content_is_not_an_image_we_accept(data: bytes) -> None:
    assert sniff_image(data) is None


@pytest.mark.anyio
async def test_a_local_file_inside_the_roots_is_loaded(tmp_path: Path) -> None:
    (tmp_path / "frame.png").write_bytes(_image("PNG"))

    data, mime = await load_image("frame.png", roots=[tmp_path], http=None)

    assert (data, mime) == (_image("PNG"), "image/png")


@pytest.mark.anyio
async def test_a_local_file_outside_the_roots_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "frame.png").write_bytes(_image("PNG"))

    with pytest.raises(InvalidRequest):
        await load_image(str(tmp_path / "frame.png"), roots=[root], http=None)
    with pytest.raises(InvalidRequest):
        await load_image("../frame.png", roots=[root], http=None)


@pytest.mark.anyio
async def test_a_file_named_png_that_is_not_an_image_is_refused(tmp_path: Path) -> None:
    (tmp_path / "fake.png").write_bytes(b"#!/bin/sh\necho hi\n")

    with pytest.raises(InvalidRequest):
        await load_image("fake.png", roots=[tmp_path], http=None)


@pytest.mark.anyio
async def test_missing_folder_or_oversized_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "big.png").write_bytes(_image("PNG", size=(64, 64)))
    (tmp_path / "folder").mkdir()

    for ref in ("missing.png", "folder"):
        with pytest.raises(InvalidRequest):
            await load_image(ref, roots=[tmp_path], http=None)
    with pytest.raises(InvalidRequest):
        await load_image("big.png", roots=[tmp_path], http=None, max_bytes=50)


@pytest.mark.anyio
async def test_a_base64_data_url_is_decoded_even_when_wrapped(tmp_path: Path) -> None:
    jpeg = _image("JPEG")
    encoded = base64.b64encode(jpeg).decode()
    wrapped = "\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))

    for ref in (f"data:image/jpeg;base64,{encoded}", f"DATA:image/jpeg;base64,{wrapped}"):
        assert await load_image(ref, roots=[tmp_path], http=None) == (jpeg, "image/jpeg")


@pytest.mark.anyio
async def test_an_oversized_data_url_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_decode(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("decoded an oversized data URL")

    monkeypatch.setattr(base64, "b64decode", must_not_decode)
    huge = "data:image/png;base64," + "A" * (30 * 1024 * 1024)
    small_cap = "data:image/png;base64," + "A" * 4_000

    with pytest.raises(InvalidRequest):
        await load_image(huge, roots=[tmp_path], http=None)
    with pytest.raises(InvalidRequest):
        await load_image(small_cap, roots=[tmp_path], http=None, max_bytes=1_000)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "ref", ["data:image/png,%89PNG", "data:image/png;base64,@@not base64@@", "data:image/png;base64"]
)
async def test_malformed_data_urls_are_refused(tmp_path: Path, ref: str) -> None:
    with pytest.raises(InvalidRequest):
        await load_image(ref, roots=[tmp_path], http=None)


@pytest.mark.anyio
async def test_an_https_url_is_fetched_with_the_given_client(tmp_path: Path) -> None:
    webp = _image("WEBP")
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(
            f"{request.url} host={request.headers['host']} sni={request.extensions.get('sni_hostname')}"
        )
        return httpx2.Response(200, content=webp)

    async with _client(handler) as http:
        got = await load_image("https://img.example/frame.webp", roots=[tmp_path], http=http, resolve=_public)

    assert got == (webp, "image/webp")
    # Connected to the checked address, with the name kept for Host and TLS verification.
    assert seen == [f"https://{PUBLIC_IP}/frame.webp host=img.example sni=img.example"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "ref", ["http://img.example/a.png", "ftp://img.example/a.png", "file:///etc/passwd", "gopher://x/1"]
)
async def test_urls_other_than_https_are_refused_without_a_request(tmp_path: Path, ref: str) -> None:
    async with _client(_no_request) as http:
        with pytest.raises(InvalidRequest):
            await load_image(ref, roots=[tmp_path], http=http, resolve=_public)


@pytest.mark.anyio
async def test_an_https_url_without_a_client_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest):
        await load_image("https://img.example/a.png", roots=[tmp_path], http=None)


@pytest.mark.anyio
async def test_a_body_without_length_is_cut_off_at_the_cap_while_streaming(tmp_path: Path) -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(10_000):
            sent += 1
            yield b"\x89PNG\r\n\x1a\n" + b"\x00" * 1016

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=endless())

    async with _client(handler) as http:
        with pytest.raises(InvalidRequest):
            await load_image(
                "https://img.example/a.png", roots=[tmp_path], http=http, max_bytes=4_096, resolve=_public
            )

    assert sent < 10


@pytest.mark.anyio
async def test_a_declared_length_over_the_cap_or_an_error_status_is_refused(tmp_path: Path) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/big.png":
            return httpx2.Response(200, content=b"\x89PNG\r\n\x1a\n" + b"\x00" * 5_000)
        return httpx2.Response(404, text="not found")

    async with _client(handler) as http:
        for path in ("/big.png", "/gone.png"):
            with pytest.raises(InvalidRequest):
                await load_image(
                    f"https://img.example{path}",
                    roots=[tmp_path],
                    http=http,
                    max_bytes=4_096,
                    resolve=_public,
                )


@pytest.mark.anyio
async def test_redirects_are_followed_only_to_https(tmp_path: Path) -> None:
    png = _image("PNG")

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/moved.png":
            return httpx2.Response(302, headers={"location": "/final.png"})
        if request.url.path == "/downgrade.png":
            return httpx2.Response(302, headers={"location": "http://img.example/final.png"})
        if request.url.path == "/loop.png":
            return httpx2.Response(302, headers={"location": "/loop.png"})
        return httpx2.Response(200, content=png)

    async with _client(handler) as http:
        assert await load_image(
            "https://img.example/moved.png", roots=[tmp_path], http=http, resolve=_public
        ) == (
            png,
            "image/png",
        )
        for path in ("/downgrade.png", "/loop.png"):
            with pytest.raises(InvalidRequest):
                await load_image(f"https://img.example{path}", roots=[tmp_path], http=http, resolve=_public)


@pytest.mark.parametrize("mode", ["crop", "pad", "stretch"])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_every_fit_mode_gives_exactly_the_requested_size_as_png(mode: images.FitMode, fmt: str) -> None:
    prepared = fit_image(_image(fmt, size=(300, 100)), 72, 128, mode, source="frame.jpg")

    img = _decoded(prepared.content)
    assert (img.format, img.size, img.mode) == ("PNG", (72, 128), "RGB")
    assert (prepared.mime_type, prepared.filename, prepared.width, prepared.height, prepared.source) == (
        "image/png",
        "reference.png",
        72,
        128,
        "frame.jpg",
    )


def test_pad_fills_with_black_and_crop_trims_the_overflow() -> None:
    wide = Image.new("RGB", (400, 100), (0, 0, 255))
    wide.paste((255, 0, 0), (150, 0, 250, 100))  # a red middle between blue sides
    out = io.BytesIO()
    wide.save(out, format="PNG")

    padded = _decoded(fit_image(out.getvalue(), 100, 100, "pad").content).convert("RGB")
    cropped = _decoded(fit_image(out.getvalue(), 100, 100, "crop").content).convert("RGB")

    assert padded.getpixel((50, 2)) == (0, 0, 0)
    assert padded.getpixel((50, 50)) == (255, 0, 0)
    # The centred 100x100 window is exactly the red middle: the blue sides are trimmed away.
    assert {cropped.getpixel(xy) for xy in [(0, 0), (99, 0), (50, 50), (0, 99), (99, 99)]} == {(255, 0, 0)}


def test_an_image_already_the_right_size_is_kept_byte_for_byte() -> None:
    jpeg = _image("JPEG", size=(64, 48))

    prepared = fit_image(jpeg, 64, 48)

    assert (prepared.content, prepared.mime_type, prepared.filename) == (jpeg, "image/jpeg", "reference.jpg")


def test_a_rotated_photo_is_turned_upright_before_fitting() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90° clockwise to view
    out = io.BytesIO()
    Image.new("RGB", (64, 32), (10, 200, 10)).save(out, format="JPEG", exif=exif)

    prepared = fit_image(out.getvalue(), 64, 32, "pad")

    assert prepared.mime_type == "image/png"
    padded = _decoded(prepared.content)
    # Upright it is 32 wide and 64 tall, so padding to 64x32 leaves black sides.
    assert padded.getpixel((2, 16)) == (0, 0, 0)


def test_transparency_is_flattened_onto_black() -> None:
    prepared = fit_image(_image("PNG", size=(20, 20), colour=(255, 255, 255, 0), mode="RGBA"), 10, 10)

    img = _decoded(prepared.content)
    assert img.mode == "RGB"
    assert img.getpixel((5, 5)) == (0, 0, 0)


@pytest.mark.parametrize(
    "data",
    [
        b"not an image",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
        _image("JPEG")[:40],
        _png_header_claiming(10_000, 6_000),
    ],
)
def test_undecodable_or_enormous_images_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidRequest):
        fit_image(data, 64, 64)


def test_a_bad_size_or_mode_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        fit_image(_image("PNG"), 0, 64)
    with pytest.raises(InvalidRequest):
        fit_image(_image("PNG"), 64, 64, "zoom")  # type: ignore[arg-type]


def test_descriptions_never_carry_tokens_or_image_bytes() -> None:
    assert (
        describe_image_ref("https://user:pw@cdn.example/a/b.png?sig=SECRET#x")
        == "https://cdn.example/a/b.png"
    )
    assert describe_image_ref("~/Pictures/cat.png") == "~/Pictures/cat.png"
    assert describe_image_ref("data:image/png;base64," + "A" * 400).startswith("data URL (")
    assert "AAAA" not in describe_image_ref("data:image/png;base64," + "A" * 400)


@pytest.mark.anyio
async def test_prepare_image_loads_fits_and_describes_the_source(tmp_path: Path) -> None:
    (tmp_path / "frame.webp").write_bytes(_image("WEBP", size=(50, 50)))

    prepared = await prepare_image("frame.webp", 40, 20, "crop", roots=[tmp_path], http=None)

    assert (prepared.width, prepared.height, prepared.source) == (40, 20, "frame.webp")
    assert _decoded(prepared.content).size == (40, 20)
