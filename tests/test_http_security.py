"""Streamable HTTP is locked down: loopback by default, Host/Origin checked, bearer token enforced,
and a non-loopback bind refuses to start without allowed hosts and a token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from helpers import structured
from procs import child_env, serving
from sora_mcp.errors import ConfigError
from sora_mcp.server.http import security_settings

TOKEN = "test-token-5f1c2e0d9b7a4e3f"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp_path = tmp_path_factory.mktemp("http")
    env = child_env(tmp_path, SORA_MCP_HTTP_TOKEN=TOKEN)
    with serving(["serve", "--transport", "http"], env) as port:
        yield f"http://127.0.0.1:{port}/mcp"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", f"Bearer {TOKEN}x", TOKEN, f"Basic {TOKEN}", f"bearer {TOKEN[:-1]}"],
)
def test_missing_or_wrong_token_is_401(server_url: str, authorization: str | None) -> None:
    headers = dict(HEADERS)
    if authorization is not None:
        headers["authorization"] = authorization
    response = httpx2.post(server_url, json=INIT, headers=headers, timeout=10)
    assert response.status_code == 401
    assert TOKEN not in response.text


def test_right_token_but_foreign_host_or_origin_is_refused(server_url: str) -> None:
    auth = {**HEADERS, "authorization": f"Bearer {TOKEN}"}
    foreign_host = httpx2.post(
        server_url, json=INIT, headers={**auth, "host": "attacker.example"}, timeout=10
    )
    foreign_origin = httpx2.post(
        server_url, json=INIT, headers={**auth, "origin": "https://attacker.example"}, timeout=10
    )
    assert foreign_host.status_code == 421
    assert foreign_origin.status_code == 403


@pytest.mark.anyio
async def test_a_client_with_the_token_works(server_url: str) -> None:
    with anyio.fail_after(30):
        async with (
            httpx2.AsyncClient(headers={"authorization": f"Bearer {TOKEN}"}, timeout=30) as http,
            Client(streamable_http_client(server_url, http_client=http)) as client,
        ):
            listed = structured(await client.call_tool("list_videos", {}))
    assert listed["count"] == 0


@pytest.mark.parametrize(
    ("allowed_hosts", "token", "missing"),
    [
        ((), None, "SORA_MCP_ALLOWED_HOSTS and SORA_MCP_HTTP_TOKEN"),
        (("studio.example:8000",), None, "SORA_MCP_HTTP_TOKEN"),
        ((), TOKEN, "SORA_MCP_ALLOWED_HOSTS"),
    ],
)
def test_non_loopback_bind_needs_allowed_hosts_and_a_token(
    allowed_hosts: tuple[str, ...], token: str | None, missing: str
) -> None:
    with pytest.raises(ConfigError, match=missing):
        security_settings("0.0.0.0", allowed_hosts, (), token)


def test_non_loopback_bind_with_both_checks_exactly_the_allowed_hosts() -> None:
    settings = security_settings("192.0.2.10", ("studio.example:8000",), (), TOKEN)
    assert settings.enable_dns_rebinding_protection
    assert settings.allowed_hosts == ["studio.example:8000"]


def test_loopback_defaults_accept_only_local_names() -> None:
    settings = security_settings("127.0.0.1", (), (), None)
    assert set(settings.allowed_hosts) == {"127.0.0.1:*", "localhost:*", "[::1]:*"}
    assert all(origin.startswith("http://") for origin in settings.allowed_origins)


def test_cli_refuses_a_public_bind_without_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sora_mcp.cli import main

    assert main(["serve", "--transport", "http", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "SORA_MCP_HTTP_TOKEN" in err
