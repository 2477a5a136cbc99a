"""Outbound URL guard (SSRF): a URL a model hands us may only reach the public internet.

Every host is resolved here and refused unless *all* its addresses are global unicast — which
excludes private, loopback, link-local (and so cloud metadata at 169.254.169.254), shared,
reserved and multicast ranges — with IPv6 forms that embed an IPv4 address (IPv4-mapped, 6to4,
Teredo) judged by the embedded address. The caller then connects to the checked address itself
(`pinned_request`), so a second DNS answer cannot swap in an internal address after the check.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import anyio
import httpx2

from sora_mcp.errors import InvalidRequest

Resolver = Callable[[str, int], Awaitable[list[str]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


async def system_resolve(host: str, port: int) -> list[str]:
    """All addresses the system resolver gives for `host`."""
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise InvalidRequest(f"the image URL's host {host!r} could not be resolved") from exc
    return [str(info[4][0]) for info in infos]


def is_public(address: IPAddress) -> bool:
    """True only for global unicast addresses, judging embedded IPv4 in IPv6 forms."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None:
            return is_public(embedded)
    return address.is_global and not address.is_multicast


async def checked_address(url: str, resolve: Resolver = system_resolve) -> IPAddress:
    """The address to connect to for `url`, after checking every address its host resolves to.

    Raises:
        InvalidRequest: no host, or any resolved address is not public.
    """
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise InvalidRequest("the image URL has no host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in await resolve(host, port)]
    if not addresses:
        raise InvalidRequest(f"the image URL's host {host!r} has no address")
    for address in addresses:
        if not is_public(address):
            raise InvalidRequest(
                f"the image URL points to a non-public address ({host} → {address}); only public "
                "https URLs are fetched. Pass a local file path or a data URL instead."
            )
    return addresses[0]


def pinned_request(client: httpx2.AsyncClient, url: str, address: IPAddress) -> httpx2.Request:
    """A GET for `url` sent to `address`, with the original Host header and TLS server name, so
    the certificate is still checked against the host name."""
    original = httpx2.URL(url)
    target = original.copy_with(host=str(address))
    host_header = original.host if original.port is None else f"{original.host}:{original.port}"
    return client.build_request(
        "GET",
        target,
        headers={"host": host_header},
        extensions={"sni_hostname": original.host},
    )
