"""sora-mcp: an MCP server for video production on the OpenAI Videos (Sora 2) wire format."""

__version__ = "0.1.0"
