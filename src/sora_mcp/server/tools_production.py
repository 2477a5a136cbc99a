"""Production tools: extend, edit, characters, delete (filled in by the toolset work)."""

from __future__ import annotations

from mcp.server import MCPServer

from sora_mcp.server.app import AppState


def register_production_tools(server: MCPServer[AppState]) -> None:
    """Register extend / edit / create_character / list_characters / delete_video."""
