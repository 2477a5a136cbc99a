"""Batch tools: batch and get_batch (filled in by the toolset work)."""

from __future__ import annotations

from mcp.server import MCPServer

from sora_mcp.server.app import AppState


def register_batch_tools(server: MCPServer[AppState]) -> None:
    """Register batch / get_batch."""
