"""A minimal MCP Apps host for browser tests: `apps_host.html` on localhost, relaying to a real server.

The page is the host side of MCP Apps (it renders the ui:// view in a sandboxed iframe and
answers its postMessage JSON-RPC); `/relay` forwards the view's tools/call and resources/read
to a real `sora-mcp serve` process through the SDK `Client`, which advertises Apps support the
way a real host does. Everything relayed is recorded in `AppsHost.relayed`.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from mcp import Client
from mcp.client import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from procs import free_port

HOST_PAGE = Path(__file__).with_name("apps_host.html")
CHROMIUM = os.environ.get("SORA_MCP_CHROMIUM", "/usr/bin/chromium")
# Flags that work as root in a container: no sandbox, no GPU, nothing phoning home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def apps_client(url: str) -> Client:
    """An SDK client that tells the server it renders MCP Apps views, as an Apps host does."""
    return Client(url, extensions=[advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})], cache=None)


class AppsHost:
    """Serve the host page on 127.0.0.1 and relay its JSON-RPC to the MCP server at `server_url`."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.port = free_port()
        self.relayed: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []
        """Relayed calls that answered isError or a protocol error, with the message."""
        self.unanswered: set[int] = set()
        """Indexes in `relayed` of the calls still waiting for the server's answer."""
        self._client: Client | None = None
        app = Starlette(
            routes=[Route("/", self._page), Route("/relay", self._relay, methods=["POST"])],
            lifespan=self._lifespan,
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        async with apps_client(self.server_url) as client:
            self._client = client
            yield

    async def _page(self, _request: Request) -> HTMLResponse:
        return HTMLResponse(HOST_PAGE.read_text(encoding="utf-8"))

    async def _relay(self, request: Request) -> JSONResponse:
        body = await request.json()
        method, params = body["method"], body.get("params") or {}
        self.relayed.append({"method": method, **params})
        index = len(self.relayed) - 1
        self.unanswered.add(index)
        try:
            return await self._answer(method, params)
        finally:
            self.unanswered.discard(index)

    async def _answer(self, method: str, params: dict[str, Any]) -> JSONResponse:
        client = self._client
        assert client is not None
        try:
            if method == "tools/list":
                result: Any = await client.list_tools()
            elif method == "tools/call":
                result = await client.call_tool(params["name"], params.get("arguments") or {})
            elif method == "resources/read":
                result = await client.read_resource(params["uri"])
            else:
                return JSONResponse({"error": {"code": -32601, "message": f"not relayed: {method}"}})
        except Exception as exc:  # the page shows protocol errors to the view as JSON-RPC errors
            self.failures.append({"method": method, **params, "error": str(exc)})
            return JSONResponse({"error": {"code": -32603, "message": str(exc)}})
        if getattr(result, "is_error", False):
            self.failures.append({"method": method, **params, "error": result.content[0].text})
        return JSONResponse({"result": result.model_dump(by_alias=True, mode="json", exclude_none=True)})

    def report(self) -> str:
        """What the host saw, for a failing test's message."""
        waiting = [self.relayed[i] for i in sorted(self.unanswered)]
        return f"relayed: {len(self.relayed)}; failed: {self.failures}; still waiting: {waiting}"

    def tool_calls(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.relayed if r["method"] == "tools/call" and r["name"] == name]

    @contextmanager
    def running(self) -> Iterator[AppsHost]:
        self._thread.start()
        try:
            for _ in range(400):  # bounded: about 20 s for uvicorn to bind and the client to connect
                if self._server.started or not self._thread.is_alive():
                    break
                threading.Event().wait(0.05)  # a real server thread starting; not a timing assertion
            if not self._server.started:
                raise RuntimeError("the test host did not start")
            yield self
        finally:
            self._server.should_exit = True
            self._thread.join(timeout=20)


def require_chromium() -> str:
    """The Chromium binary; skip when it is absent on a developer machine, fail in CI (where
    .ci/browser.sh installs it and a missing browser is a broken pipeline, not a choice)."""
    found = shutil.which(CHROMIUM) or (CHROMIUM if Path(CHROMIUM).is_file() else None)
    if found:
        return found
    if os.environ.get("CI") or os.environ.get("SORA_MCP_REQUIRE_BROWSER"):
        pytest.fail(f"Chromium is required in CI but {CHROMIUM} is missing; .ci/browser.sh installs it.")
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set SORA_MCP_CHROMIUM)")


def launch_options() -> dict[str, Any]:
    """Options for Playwright's `launch_persistent_context` with the system Chromium (headless);
    the caller passes a new empty folder as the profile."""
    return {"executable_path": require_chromium(), "args": CHROMIUM_ARGS, "headless": True}
