"""Image URLs may only reach the public internet: every hop resolved, checked and pinned."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import anyio
import httpx2
import pytest

from sora_mcp.errors import InvalidRequest
from sora_mcp.media import images
from sora_mcp.media.images import load_image
from sora_mcp.media.netguard import checked_address, is_public

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # shared address space (carrier NAT)
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",  # AWS metadata over IPv6
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:169.254.169.254",
        "2002:7f00:1::",  # 6to4 wrapping 127.0.0.1
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo wrapping 10.0.0.1
        "ff02::1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_accepted(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def _resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        return table[host]

    return resolve


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "table"),
    [
        ("https://127.0.0.1/a.png", {}),
        ("https://[::ffff:10.0.0.1]/a.png", {}),
        ("https://internal.example/a.png", {"internal.example": ["10.0.0.7"]}),
        # One bad address among good ones is enough to refuse: the connection could pick it.
        ("https://mixed.example/a.png", {"mixed.example": ["93.184.216.34", "169.254.169.254"]}),
        ("https://empty.example/a.png", {"empty.example": []}),
    ],
)
async def test_urls_reaching_private_space_are_refused(url: str, table: dict[str, list[str]]) -> None:
    with pytest.raises(InvalidRequest):
        await checked_address(url, _resolver(table))


@pytest.mark.anyio
async def test_every_redirect_hop_is_rechecked(tmp_path: Path) -> None:
    requests: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        requests.append(request.headers["host"])
        return httpx2.Response(302, headers={"location": "https://metadata.internal/latest/meta-data"})

    resolve = _resolver({"cdn.example": ["93.184.216.34"], "metadata.internal": ["169.254.169.254"]})
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as http:
        with pytest.raises(InvalidRequest, match="non-public"):
            await load_image("https://cdn.example/a.png", roots=[tmp_path], http=http, resolve=resolve)
    assert requests == ["cdn.example"]  # the internal hop was never requested


@pytest.mark.anyio
async def test_a_slow_image_server_is_cut_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Time is the seam here: a tiny cap instead of waiting the real 20 s.
    monkeypatch.setattr(images, "_FETCH_SECONDS", 0.05)

    async def stall(request: httpx2.Request) -> httpx2.Response:
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    resolve = _resolver({"slow.example": ["93.184.216.34"]})
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(stall)) as http:
        with anyio.fail_after(5), pytest.raises(InvalidRequest, match="longer than"):
            await load_image("https://slow.example/a.png", roots=[tmp_path], http=http, resolve=resolve)


@pytest.mark.anyio
async def test_a_public_url_is_fetched_from_the_checked_address(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append((request.url.host, request.headers["host"]))
        return httpx2.Response(200, content=PNG)

    resolve = _resolver({"img.example": ["93.184.216.34"]})
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as http:
        data, mime = await load_image(
            "https://img.example/a.png", roots=[tmp_path], http=http, resolve=resolve
        )
    assert (data, mime) == (PNG, "image/png")
    assert seen == [("93.184.216.34", "img.example")]
