"""The studio the user can watch: an MCP Apps (`ui://`) view bound to get_video and list_videos.

Hosts that speak MCP Apps render `studio.html` in a sandboxed iframe next to the answer of
get_video or list_videos: a player, the registry as a gallery with status, lineage and spend,
and buttons that call extend / edit / download through the host (so billable calls still go
through the host's approval and the server's cost confirmation). The iframe has no network:
the media reach it through the app-only `studio_media` tool as base64, turned into blob URLs.
Clients without Apps ignore the binding and read the tools' text as before.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from mcp.server.apps import Apps, ResourceCsp
from mcp.types import ToolAnnotations

from sora_mcp.server.apps.media import studio_media

STUDIO_URI = "ui://sora-mcp/studio.html"


def studio_ui_meta() -> dict[str, Any]:
    """The `_meta` that binds a model-facing tool (get_video, list_videos) to the studio view.
    `ui/resourceUri` is the flat key hosts written against early drafts of the spec still read."""
    return {"ui": {"resourceUri": STUDIO_URI}, "ui/resourceUri": STUDIO_URI}


def studio_html() -> str:
    return resources.files(__package__).joinpath("studio.html").read_text(encoding="utf-8")


def studio_apps() -> Apps:
    """The Apps extension: the studio view and the app-only tool that feeds it media."""
    apps = Apps()
    apps.add_html_resource(
        STUDIO_URI,
        studio_html(),
        name="studio",
        title="Sora studio",
        description="Player and gallery of the video registry, with lineage, spend and actions.",
        # Nothing outside the iframe: media arrive as tool results, so every list stays empty.
        csp=ResourceCsp(connect_domains=[], resource_domains=[], frame_domains=[], base_uri_domains=[]),
        prefers_border=True,
    )
    apps.tool(
        resource_uri=STUDIO_URI,
        visibility=["app"],
        name="studio_media",
        title="Studio media",
        annotations=ToolAnnotations(
            title="Studio media",
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )(studio_media)
    return apps
