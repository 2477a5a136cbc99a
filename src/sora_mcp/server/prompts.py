"""Prompt guides as resources and workflow templates as MCP prompts (filled in by the toolset work)."""

from __future__ import annotations

from mcp.server import MCPServer

from sora_mcp.server.app import AppState


def register_prompts(server: MCPServer[AppState]) -> None:
    """Register the guides (resources) and the workflow templates (prompts)."""
