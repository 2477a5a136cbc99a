"""What every tool module shares: the one place domain errors become tool errors, the shared
argument types, and access to the lifespan state."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, ParamSpec, TypeVar

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent
from pydantic import Field

from sora_mcp.errors import SoraError
from sora_mcp.registry.records import VideoRecord
from sora_mcp.server.state import AppState
from sora_mcp.studio.studio import Studio

P = ParamSpec("P")
R = TypeVar("R")
MAX_WAIT_SECONDS = 1800

Seconds = Annotated[
    Literal[4, 8, 12, 16, 20], Field(description="Clip length in seconds: 4, 8, 12, 16 or 20.")
]
WaitSeconds = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="How long to wait for completion, sending progress meanwhile. 0 = return at once. "
        "If the wait ends first you get still_running=true and can simply call get_video again.",
    ),
]
VideoId = Annotated[str, Field(description="A video id from generate or list_videos, e.g. 'video_68d7…'.")]


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

    return wrapper


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
    return payload


def error_result(exc: SoraError) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=str(exc))],
        structured_content={"error": error_payload(exc)},
        is_error=True,
    )


def studio_of(ctx: Context[AppState]) -> Studio:
    return ctx.request_context.lifespan_context.studio


def progress_reporter(ctx: Context[AppState]) -> Callable[[list[VideoRecord], float], Awaitable[None]]:
    """A wait callback that sends one MCP progress notification per update (0–100 overall)."""

    async def report(records: list[VideoRecord], elapsed: float) -> None:
        total = sum(100 if r.status == "completed" else r.progress for r in records)
        parts = ", ".join(f"{r.id or r.local_id}: {r.status} {r.progress}%" for r in records)
        await ctx.report_progress(total / max(1, len(records)), 100, f"{parts} ({elapsed:.0f}s)")

    return report
