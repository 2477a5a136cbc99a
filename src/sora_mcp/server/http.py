"""Streamable HTTP transport, locked down: loopback by default, Host/Origin checks always on,
and a bearer token required before the server may listen beyond this machine.

The token guards the MCP endpoint only; it is never forwarded to the video API (that uses
OPENAI_API_KEY), so a leaked client token cannot spend the backend's money directly.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence
from typing import Any

from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from sora_mcp.errors import ConfigError

_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def security_settings(
    host: str, allowed_hosts: Sequence[str], allowed_origins: Sequence[str], token: str | None
) -> TransportSecuritySettings:
    """Host/Origin rules for a bind address.

    Raises:
        ConfigError: a non-loopback bind without explicit allowed hosts and a bearer token.
    """
    if not is_loopback(host):
        missing = [
            name
            for name, value in (("SORA_MCP_ALLOWED_HOSTS", allowed_hosts), ("SORA_MCP_HTTP_TOKEN", token))
            if not value
        ]
        if missing:
            raise ConfigError(
                f"Binding to {host} exposes the server beyond this machine; set {' and '.join(missing)} "
                "first (e.g. SORA_MCP_ALLOWED_HOSTS=studio.example.com:8000 and a long random "
                "SORA_MCP_HTTP_TOKEN), or bind to 127.0.0.1."
            )
    hosts = list(allowed_hosts) or [f"{name}:*" for name in _LOOPBACK_NAMES]
    origins = list(allowed_origins) or [f"http://{name}:*" for name in _LOOPBACK_NAMES]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


class BearerTokenMiddleware:
    """Refuse every HTTP request without `Authorization: Bearer <token>` (401)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            supplied = dict(scope.get("headers") or []).get(b"authorization", b"")
            # Constant-time comparison: the token must not leak through response timing.
            if not hmac.compare_digest(supplied, self._expected):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b'Bearer realm="sora-mcp"'),
                        ],
                    }
                )
                await send(
                    {
                        "type": "http.response.body",
                        "body": b'{"error": "missing or wrong bearer token (SORA_MCP_HTTP_TOKEN)"}',
                    }
                )
                return
        await self.app(scope, receive, send)


def http_app(
    server: MCPServer[Any],
    *,
    host: str,
    allowed_hosts: Sequence[str] = (),
    allowed_origins: Sequence[str] = (),
    token: str | None = None,
) -> ASGIApp:
    """The streamable HTTP ASGI app at /mcp with Host/Origin checks and optional bearer auth."""
    security = security_settings(host, allowed_hosts, allowed_origins, token)
    app: ASGIApp = server.streamable_http_app(transport_security=security, host=host)
    if token:
        app = BearerTokenMiddleware(app, token)
    return app
