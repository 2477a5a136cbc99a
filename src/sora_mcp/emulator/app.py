"""The emulator: a Starlette app speaking the OpenAI Videos API contract (as summarised in the README's "What the wire format really is").

`create_app` is the only public entry point. The app keeps all state under `root` (see
`store.py`), derives every job's status from the clock (no background tasks, so it runs the
same under `httpx2.ASGITransport`, which starts no lifespan), renders real media on the first
download, and answers every refusal with the error envelope and an `x-request-id` header.

Layers inside the app, outermost first: the gate (request id, API key, injected faults), then
routing; handlers raise `WireError`, which becomes the envelope here.
"""

from __future__ import annotations

import hmac
import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sora_mcp.clock import Clock, SystemClock
from sora_mcp.emulator.envelope import REQUEST_ID_HEADER, WireError, new_request_id
from sora_mcp.emulator.faults import FaultConfig
from sora_mcp.emulator.jobs import Jobs
from sora_mcp.emulator.profile_layer import ProfileLayer, UpstreamLog
from sora_mcp.emulator.profiles import emulator_profile
from sora_mcp.emulator.routes_batches import batch_routes
from sora_mcp.emulator.routes_characters import character_routes
from sora_mcp.emulator.routes_videos import video_routes
from sora_mcp.emulator.store import EmulatorStore

logger = logging.getLogger(__name__)


def create_app(
    *,
    root: Path,
    clock: Clock | None = None,
    speed: float = 20.0,
    faults: FaultConfig | None = None,
    path_prefix: str = "/v1",
    api_key: str | None = None,
    render_fps: int = 24,
    profile: str | None = None,
) -> Starlette:
    """An emulator app keeping its state under `root`.

    Args:
        root: folder for job records and media; apps over the same root share their jobs.
        clock: time source for the job lifecycle (a `FakeClock` makes tests instant).
        speed: how many times faster than the real service jobs finish
            (render time = `catalog.estimate_render_seconds(...) / speed`).
        faults: injected HTTP faults, consulted on every request (see `faults.py`); kept on
            `app.state.faults` so a test can inject more while the app runs.
        path_prefix: where the API lives, `"/v1"` like `https://api.openai.com/v1`.
        api_key: when set, requests must send `Authorization: Bearer <api_key>` (else 401).
        render_fps: frame rate of rendered clips; size and duration are exact at any rate.
        profile: answer like this server (a name from `profiles.py`; None: the contract).
            Every request the profile's layer passed on is in `app.state.upstream`.
    """
    if render_fps <= 0:
        raise ValueError(f"render_fps must be positive, got {render_fps}")
    if path_prefix and (not path_prefix.startswith("/") or path_prefix.endswith("/")):
        raise ValueError(f"path_prefix must look like '/v1' (or be empty), got {path_prefix!r}")
    fault_config = faults if faults is not None else FaultConfig()
    routes: list[BaseRoute] = [*character_routes(), *video_routes(), *batch_routes()]
    upstream = UpstreamLog()
    layer = Middleware(ProfileLayer, profile=emulator_profile(profile), prefix=path_prefix, log=upstream)
    app = Starlette(
        routes=[Mount(path_prefix, routes=routes)] if path_prefix else routes,
        middleware=[layer, Middleware(_Gate, api_key=api_key, faults=fault_config)],
        exception_handlers={
            WireError: _wire_error,
            HTTPException: _http_exception,
            Exception: _server_error,
        },
    )
    app.state.jobs = Jobs(EmulatorStore(root), clock or SystemClock(), speed=speed, fps=render_fps)
    app.state.faults = fault_config
    app.state.upstream = upstream
    return app


class _Gate:
    """Stamps every answer with `x-request-id`, then checks the API key, then injected faults."""

    def __init__(self, app: ASGIApp, *, api_key: str | None, faults: FaultConfig) -> None:
        self.app = app
        self.api_key = api_key
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        refusal = self._auth_refusal(scope)
        if refusal is None:
            fault = self.faults.take(scope["method"], scope["path"])
            refusal = fault.error() if fault is not None else None
        if refusal is not None:
            await refusal.response()(scope, receive, send_with_id)
            return
        await self.app(scope, receive, send_with_id)

    def _auth_refusal(self, scope: Scope) -> WireError | None:
        if self.api_key is None:
            return None
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return WireError(
                401,
                "You didn't provide an API key. Send it in an Authorization header using Bearer auth "
                "(Authorization: Bearer YOUR_KEY).",
                code="missing_api_key",
            )
        given = given.strip()
        if hmac.compare_digest(given.encode(), self.api_key.encode()):
            return None
        masked = f"{given[:3]}****{given[-4:]}" if len(given) > 10 else "****"
        return WireError(401, f"Incorrect API key provided: {masked}.", code="invalid_api_key")


async def _wire_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, WireError):  # pragma: no cover - registered for WireError only
        raise exc
    return exc.response()


async def _http_exception(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        message = (
            f"Unknown request URL: {request.method} {request.url.path}. Check the path and the base URL."
        )
        return WireError(404, message, code="unknown_url").response()
    if status == 405:
        return WireError(405, f"Method {request.method} is not allowed on {request.url.path}.").response()
    detail = exc.detail if isinstance(exc, HTTPException) else str(exc)
    return WireError(status, str(detail)).response()


async def _server_error(request: Request, exc: Exception) -> Response:
    # Outside the gate (Starlette's outermost layer answers these), so stamp the id here.
    logger.error("emulator error on %s %s", request.method, request.url.path, exc_info=exc)
    response = WireError(500, "The emulator hit an internal error; see its log for details.").response()
    request_id = getattr(request.state, "request_id", None) or new_request_id()
    response.headers[REQUEST_ID_HEADER] = request_id
    return response
