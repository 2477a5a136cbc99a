"""MCP resources: the capability catalogue and registry records, readable without a tool call."""

from __future__ import annotations

import json

import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.mcpserver import Context

from sora_mcp import catalog
from sora_mcp.config import Settings
from sora_mcp.errors import InvalidRequest
from sora_mcp.registry.factory import open_registry
from sora_mcp.server.protocol import NoSuchRecord
from sora_mcp.server.schemas import CharacterView, LineageLink, VideoView
from sora_mcp.server.state import AppState
from sora_mcp.studio.lineage import children_links, parent_link


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
        registry = ctx.request_context.lifespan_context.studio.registry
        try:
            record = ctx.request_context.lifespan_context.studio.get_record(video_id)
        except InvalidRequest as exc:
            # An expected answer (a typo, a video from another machine): a clean protocol error.
            raise NoSuchRecord(str(exc)) from exc
        parent = parent_link(registry, record)
        data = {
            **VideoView.of(record).model_dump(mode="json"),
            "parent": LineageLink.of(parent).model_dump(mode="json") if parent else None,
            "children": [LineageLink.of(c).model_dump(mode="json") for c in children_links(registry, record)],
        }
        return json.dumps(data, indent=2)

    @server.resource(
        "sora://characters",
        name="characters",
        title="Characters",
        description="Every character made so far (id, name, backend, source clip), newest first. Use a "
        "name in generate(characters=[…]) and write it verbatim in the prompt.",
        mime_type="application/json",
    )
    async def characters() -> str:
        # Static resources get no request context in MCP 2.x, so this reads the registry folder
        # directly; the registry is safe to open from several places at once.
        def read() -> str:
            with open_registry(settings) as registry:
                found = registry.list_characters()
            views = [CharacterView.of(c).model_dump(mode="json") for c in found]
            return json.dumps({"characters": views, "count": len(views)}, indent=2)

        return await anyio.to_thread.run_sync(read)
