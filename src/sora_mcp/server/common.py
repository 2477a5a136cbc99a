"""What every tool module shares: the one place domain errors become tool errors, the shared
argument types, and access to the lifespan state."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal, ParamSpec, TypeVar
from urllib.parse import urlsplit
from urllib.request import url2pathname

from mcp.server.mcpserver import Context, ListRoots, Resolve
from mcp.types import CallToolResult, ClientCapabilities, ListRootsResult, RootsCapability, TextContent
from pydantic import Field

from sora_mcp.config import DEFAULT_MAX_WAIT_SECONDS, Settings
from sora_mcp.errors import InvalidRequest, LocalFileError, SoraError
from sora_mcp.files import CLIENT_ROOTS
from sora_mcp.registry.records import VideoRecord
from sora_mcp.server.state import AppState
from sora_mcp.studio.studio import DERIVED_KEY_PREFIX, Studio

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
# What the tools advise for wait_seconds: under every client's 60 s call limit with room to spare.
RECOMMENDED_WAIT_SECONDS = 40

Seconds = Annotated[
    Literal[4, 8, 12, 16, 20], Field(description="Clip length in seconds: 4, 8, 12, 16 or 20.")
]
WaitSeconds = Annotated[
    int,
    Field(
        ge=0,
        description=f"Seconds to wait, with progress (at most {DEFAULT_MAX_WAIT_SECONDS}); still running: call again.",
    ),
]
# Described once, in the server's instructions: tools/list has a character budget.
IdempotencyKey = str | None
VideoId = Annotated[str, Field(description="A video id from generate or list_videos.")]


def tool_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R | CallToolResult]]:
    """Turn `SoraError` into an isError result: its text is the message the model acts on, and its
    structured content keeps the error's fields (`error_payload`) for a program to read.

    A returned result rather than a raised `ToolError`: the SDK turns a `ToolError` into text only,
    which would lose `code` and `param` at the boundary."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | CallToolResult:
        try:
            return await fn(*args, **kwargs)
        except SoraError as exc:
            return error_result(exc)
        except Exception as exc:
            return error_result(unexpected(exc))

    return wrapper


async def _ask_roots(ctx: Context[AppState]) -> ListRoots | ListRootsResult:
    # Asked only of a client that declared roots; the SDK sends roots/list (or, on the newer
    # protocol, an input request) and injects the answer.
    if ctx.request_context.session.check_client_capability(ClientCapabilities(roots=RootsCapability())):
        return ListRoots()
    return ListRootsResult(roots=[])


ClientRoots = Annotated[ListRootsResult, Resolve(_ask_roots)]
"""A tool parameter filled by the SDK, not by the model: the folders the client declared as its
roots. `with_client_roots` makes them allowed input folders for the call."""


def with_client_roots(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Let the call read files inside the client's declared roots (its `client_roots`
    argument), besides the output folder and SORA_MCP_INPUT_DIRS. A client without roots adds
    nothing."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        declared = kwargs.get("client_roots")
        roots = local_folders(declared) if isinstance(declared, ListRootsResult) else ()
        token = CLIENT_ROOTS.set(roots)
        try:
            return await fn(*args, **kwargs)
        finally:
            CLIENT_ROOTS.reset(token)

    return wrapper


def local_folders(listed: ListRootsResult) -> tuple[Path, ...]:
    """The local folders among a client's roots (file: URIs only)."""
    return tuple(
        Path(url2pathname(urlsplit(str(root.uri)).path))
        for root in listed.roots
        if str(root.uri).startswith("file://")
    )


def unexpected(exc: Exception) -> SoraError:
    """A project error for an exception no layer turned into one, so the model still reads what
    happened and what to do (the SDK would answer an opaque "Error executing tool")."""
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return LocalFileError(
            f"A local file could not be used: {exc.strerror or exc}{where}. Check the path and the free "
            "space, then call again; list_videos shows anything already started.",
            code="file_error",
        )
    if isinstance(exc, ValueError | OverflowError | TypeError):
        return InvalidRequest(
            f"An argument could not be used ({type(exc).__name__}: {exc}); check the values and call again.",
            code="invalid_argument",
        )
    log.error("unexpected error in a tool", exc_info=exc)
    return SoraError(
        f"sora-mcp failed unexpectedly ({type(exc).__name__}: {exc}). Nothing more is sent for this "
        "call; list_videos shows anything already started.",
        code="internal_error",
    )


def error_payload(exc: SoraError) -> dict[str, Any]:
    """The machine-readable part of a tool error: `kind` names the class (invalid_request,
    budget_exceeded, not_found, …), `code` the specific reason (the backend's code, e.g.
    moderation_blocked, or sora-mcp's; `kind` when there is none), `param` the argument at fault."""
    payload: dict[str, Any] = {
        "kind": exc.kind,
        "code": exc.code or exc.kind,
        "param": exc.param,
        "message": str(exc),
    }
    request_id = getattr(exc, "request_id", None)
    if request_id:
        payload["request_id"] = request_id
    problems = getattr(exc, "problems", None)
    if problems:
        payload["problems"] = problems
    # A spending quote's token and figure (SpendNotConfirmed).
    for extra in ("confirm_token", "estimated_cost_usd"):
        value = getattr(exc, extra, None)
        if value is not None:
            payload[extra] = value
    return payload


def error_result(exc: SoraError) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=str(exc))],
        structured_content={"error": error_payload(exc)},
        is_error=True,
    )


def idempotency_key(ctx: Context[AppState], given: str | None) -> str:
    """The client's key, else one derived from this very request (its JSON-RPC id, session and
    arguments): a transport that delivers the same request twice — to this replica or another —
    then starts one job. Derived keys are remembered only for `DERIVED_KEY_WINDOW` seconds."""
    if given is not None:
        return f"client:{given}"
    request = ctx.request_context
    params = dict(request.params or {})
    headers = ctx.headers or {}
    identity = {
        "request_id": str(request.request_id),
        "session": headers.get("mcp-session-id"),
        "tool": params.get("name"),
        "arguments": params.get("arguments"),
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    return f"{DERIVED_KEY_PREFIX}{digest}"


def studio_of(ctx: Context[AppState]) -> Studio:
    return ctx.request_context.lifespan_context.studio


def wait_limit(settings: Settings, wait_seconds: float) -> float:
    """`wait_seconds` shortened to the configured maximum, so a call ends before the client's
    own time limit; the answer then says to call again."""
    return max(0.0, min(float(wait_seconds), float(settings.max_wait_seconds)))


def recommended_wait(settings: Settings) -> int:
    return min(RECOMMENDED_WAIT_SECONDS, settings.max_wait_seconds)


def progress_reporter(ctx: Context[AppState]) -> Callable[[list[VideoRecord], float], Awaitable[None]]:
    """A wait callback that sends one MCP progress notification per update (0–100 overall)."""

    async def report(records: list[VideoRecord], elapsed: float) -> None:
        total = sum(100 if r.status == "completed" else r.progress for r in records)
        parts = ", ".join(f"{r.id or r.local_id}: {r.status} {r.progress}%" for r in records)
        await ctx.report_progress(total / max(1, len(records)), 100, f"{parts} ({elapsed:.0f}s)")

    return report
