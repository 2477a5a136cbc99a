"""MCP resources: the capability catalogue and registry records, readable without a tool call."""

from __future__ import annotations

import json

from mcp.server import MCPServer
from mcp.server.mcpserver import Context

from sora_mcp import catalog
from sora_mcp.config import Settings
from sora_mcp.server.app import AppState
from sora_mcp.server.schemas import VideoView


def register_resources(server: MCPServer[AppState], settings: Settings) -> None:
    @server.resource(
        "sora://capabilities",
        name="capabilities",
        title="Models, sizes, durations, prices and limits",
        description="What each model accepts and costs; read before choosing model/size/seconds.",
        mime_type="application/json",
    )
    def capabilities() -> str:
        data = {
            **catalog.capabilities(),
            "backend": {
                "kind": "emulator" if settings.is_emulator else "remote",
                "name": settings.backend_label,
                "simulated": settings.is_emulator,
                "output_dir": str(settings.output_dir),
            },
        }
        return json.dumps(data, indent=2)

    @server.resource(
        "sora://videos/{video_id}",
        name="video",
        title="A video's registry record",
        description="Everything the registry knows about one video: status, prompt, lineage, local files.",
        mime_type="application/json",
    )
    def video(video_id: str, ctx: Context[AppState]) -> str:
        studio = ctx.request_context.lifespan_context.studio
        record = studio.get_record(video_id)
        return VideoView.of(record).model_dump_json(indent=2)
