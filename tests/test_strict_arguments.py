"""Strict arguments in one voice: an argument a tool does not take is refused before any request,
naming the ones it does take; every validation error reads like the project's own messages (what
was wrong, what is allowed, what to do) with machine-readable fields; prompts check their
arguments against the catalogue the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import MCPError
from mcp.types import INVALID_PARAMS

from helpers import Rig, error_text, structured, tool_error
from sora_mcp.server.tools.table import TOOLS

pytestmark = pytest.mark.anyio


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(root=tmp_path)


# One bad call per tool: a value of the wrong kind, out of range, or not allowed.
BAD_CALLS: dict[str, dict[str, Any]] = {
    "generate": {"prompt": "a fox", "seconds": 5},
    "get_video": {"video_id": "video_1", "wait_seconds": -1},
    "download": {"video_id": "video_1", "variant": "poster"},
    "list_videos": {"limit": 0},
    "extend": {"video_id": "video_1", "prompt": "on", "seconds": "long"},
    "edit": {"video_id": "video_1"},
    "create_character": {"name": "", "clip_path": "a.mp4"},
    "list_characters": {"verbose": True},
    "delete_video": {"video_id": "video_1", "delete_files": "maybe"},
    "batch": {"requests": [{"prompt": "x", "duration": 8}]},
    "get_batch": {"batch_id": ["b"]},
}

LIBRARY_WORDS = ("validation error", "pydantic", "errors.pydantic.dev", "Input should", "type=")


async def test_an_unknown_argument_is_refused_before_anything_is_billed(rig: Rig) -> None:
    async with rig.client() as client:
        refused = await client.call_tool(
            "generate", {"prompt": "a lighthouse", "duration": 8, "dry_run": True}
        )
        listed = await client.call_tool("list_videos", {})
    error = tool_error(refused)
    assert (error["kind"], error["code"], error["param"]) == (
        "invalid_arguments",
        "unknown_argument",
        "duration",
    )
    assert [p["param"] for p in error["problems"]] == ["duration", "dry_run"]
    for name in ("prompt", "seconds", "size", "model", "variations"):
        assert name in error["message"]  # it names what the tool does take
    assert rig.transport.requests == []
    assert structured(listed)["count"] == 0


async def test_the_input_schemas_say_that_other_arguments_are_refused(rig: Rig) -> None:
    async with rig.client() as client:
        tools = (await client.list_tools()).tools
    assert {tool.name for tool in tools} >= {spec.name for spec in TOOLS}
    assert all(tool.input_schema.get("additionalProperties") is False for tool in tools)


@pytest.mark.parametrize("tool", sorted(BAD_CALLS))
async def test_every_tools_argument_errors_read_in_the_projects_voice(rig: Rig, tool: str) -> None:
    async with rig.client() as client:
        refused = await client.call_tool(tool, BAD_CALLS[tool])
    text = error_text(refused)
    error = tool_error(refused)
    assert error["kind"] == "invalid_arguments"
    assert error["code"] in ("invalid_argument", "unknown_argument")
    assert error["param"] and error["param"] in text
    assert not any(word in text for word in LIBRARY_WORDS), text
    assert "nothing was sent" in text and f"call {tool} again" in text
    assert rig.transport.requests == []


async def test_a_value_outside_the_allowed_ones_says_which_are_allowed(rig: Rig) -> None:
    async with rig.client() as client:
        seconds = tool_error(await client.call_tool("generate", {"prompt": "x", "seconds": 5}))
        variations = tool_error(await client.call_tool("generate", {"prompt": "x", "variations": 9}))
        missing = tool_error(await client.call_tool("generate", {}))
    assert seconds["param"] == "seconds" and "4, 8, 12, 16 or 20" in seconds["message"]
    assert variations["param"] == "variations" and "at most 4" in variations["message"]
    assert missing["param"] == "prompt" and "prompt is required" in missing["message"]


async def test_a_batch_items_unknown_field_is_named_with_its_position(rig: Rig) -> None:
    async with rig.client() as client:
        refused = tool_error(await client.call_tool("batch", BAD_CALLS["batch"]))
    assert refused["param"] == "requests[0].duration"
    assert rig.transport.requests == []


async def test_an_unknown_tool_is_a_tool_error_listing_the_tools(rig: Rig) -> None:
    async with rig.client() as client:
        refused = tool_error(await client.call_tool("make_video", {"prompt": "x"}))
    assert refused["code"] == "unknown_tool"
    assert all(spec.name in refused["message"] for spec in TOOLS)


async def test_a_prompt_refuses_a_duration_the_catalogue_does_not_offer(rig: Rig) -> None:
    async with rig.client() as client:
        with pytest.raises(MCPError) as seconds:
            await client.get_prompt(
                "ad_variants", {"product": "a bottle", "headline": "Drink", "seconds": "5"}
            )
        with pytest.raises(MCPError) as size:
            await client.get_prompt(
                "ad_variants", {"product": "a bottle", "headline": "Drink", "size": "1920x1080"}
            )
        fine = await client.get_prompt(
            "ad_variants", {"product": "a bottle", "headline": "Drink", "seconds": "12"}
        )
    assert seconds.value.code == INVALID_PARAMS
    assert "seconds=5" in seconds.value.message and "4, 8, 12, 16, 20" in seconds.value.message
    assert "ad_variants" in seconds.value.message
    assert size.value.code == INVALID_PARAMS and "sora-2-pro" in size.value.message
    assert fine.messages
