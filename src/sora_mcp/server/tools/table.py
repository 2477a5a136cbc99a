"""The one table of MCP tools: each tool's name, title and behaviour hints, and the one loop that
adds them to a server.

A tool is a plain async function in `videos.py`, `production.py` or `batch.py`; its signature is
its input schema, its docstring its description and its return annotation its output schema. To
add a tool, write the function and add one `ToolSpec` row here. `meta` goes out verbatim in the
tool's `_meta` (e.g. an MCP Apps `ui` binding or visibility), so other parts of the server can
attach to a tool without touching its function.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mcp.types import ToolAnnotations

from sora_mcp.server.apps import studio_ui_meta
from sora_mcp.server.common import tool_errors, with_client_roots
from sora_mcp.server.protocol import SoraMCPServer
from sora_mcp.server.tools import batch, production, videos


@dataclass(frozen=True)
class ToolSpec:
    """One tool as the client sees it. The hints say what a call does (MCP tool annotations), and
    `test_annotations.py` checks them against what each tool does:
    `read_only` — changes nothing: no file written, no registry row changed, no request but
    reads; `destructive` — may delete; `idempotent` — repeating the same call has no further
    effect; `open_world` — reaches the backend (outside this machine)."""

    name: str
    title: str
    fn: Callable[..., Any]
    read_only: bool
    destructive: bool = False
    idempotent: bool = False
    open_world: bool = True
    meta: dict[str, Any] | None = field(default=None, hash=False)

    def annotations(self) -> ToolAnnotations:
        return ToolAnnotations(
            title=self.title,
            read_only_hint=self.read_only,
            destructive_hint=self.destructive,
            idempotent_hint=self.idempotent,
            open_world_hint=self.open_world,
        )

    def description(self) -> str:
        return inspect.cleandoc(self.fn.__doc__ or "")


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("generate", "Generate video clips", videos.generate, read_only=False),
    # get_video and get_batch refresh the registry and download completed files: not read-only.
    ToolSpec(
        "get_video",
        "Get / wait for a video",
        videos.get_video,
        read_only=False,
        idempotent=True,
        meta=studio_ui_meta(),
    ),
    ToolSpec("download", "Download a video's files", videos.download, read_only=False, idempotent=True),
    ToolSpec(
        "list_videos",
        "List videos",
        videos.list_videos,
        read_only=True,
        idempotent=True,
        open_world=False,
        meta=studio_ui_meta(),
    ),
    ToolSpec("extend", "Extend a video", production.extend_tool, read_only=False),
    ToolSpec("edit", "Edit a video", production.edit_tool, read_only=False),
    ToolSpec("create_character", "Create a character", production.create_character_tool, read_only=False),
    ToolSpec(
        "list_characters",
        "List characters",
        production.list_characters_tool,
        read_only=True,
        idempotent=True,
        open_world=False,
    ),
    ToolSpec(
        "delete_video",
        "Delete a video",
        production.delete_video_tool,
        read_only=False,
        destructive=True,
        idempotent=True,
    ),
    ToolSpec("batch", "Generate many clips in one batch", batch.batch, read_only=False),
    ToolSpec("get_batch", "Get / wait for a batch", batch.get_batch, read_only=False, idempotent=True),
)


def add_tools(server: SoraMCPServer, tools: Iterable[ToolSpec] = TOOLS) -> None:
    """Add every tool of the table to `server`, each wrapped so domain errors become tool errors
    (the server refuses arguments a tool does not take: see protocol.py)."""
    for spec in tools:
        # A tool taking local paths declares `client_roots`; the client's roots then count as
        # allowed folders for its call.
        fn = (
            with_client_roots(spec.fn) if "client_roots" in inspect.signature(spec.fn).parameters else spec.fn
        )
        server.add_tool(
            tool_errors(fn),
            name=spec.name,
            title=spec.title,
            description=spec.description(),
            annotations=spec.annotations(),
            meta=spec.meta,
        )
