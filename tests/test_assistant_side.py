"""The assistant's side of the server: no call outlives a client's time limit, protocol errors
carry the project's message, the tool listing fits a context budget, previews come only when
they help, and local files are refused (or allowed) with the setting that decides it."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, MCPError
from mcp.types import INVALID_PARAMS, ImageContent, ListRootsResult, Root, TextContent

from helpers import Rig, png_bytes, structured, tool_error
from sora_mcp.clock import FakeClock
from sora_mcp.config import Settings
from sora_mcp.server.app import build_server
from sora_mcp.server.instructions import instructions

pytestmark = pytest.mark.anyio

CLIENT_TIME_LIMIT = 60.0  # what the MCP Inspector and several desktop clients allow one call
TOOLS_LIST_BUDGET = 25_000  # characters of compact JSON


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(root=tmp_path)


class TimedClient:
    """A client that gives up on a call after CLIENT_TIME_LIMIT seconds of the shared clock, the
    way a desktop client does in real time; it records how long each call took."""

    def __init__(self, client: Client, clock: FakeClock) -> None:
        self.client, self.clock = client, clock
        self.durations: list[float] = []

    async def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        start = self.clock.now()
        result = await self.client.call_tool(tool, arguments)
        took = self.clock.now() - start
        assert took < CLIENT_TIME_LIMIT, f"{tool} took {took:.0f} s: the client would have given up"
        self.durations.append(took)
        return structured(result)


def advised_call(next_step: str) -> tuple[str, dict[str, Any]]:
    """The tool call a next_step asks for, e.g. "Call get_video('video_1', wait_seconds=40) …"."""
    match = re.search(r"get_video\('([^']+)', wait_seconds=(\d+)\)", next_step) or re.search(
        r"get_video with video_id (\S+?)[,;]? and wait_seconds=(\d+)", next_step
    )
    assert match, next_step
    return "get_video", {"video_id": match.group(1), "wait_seconds": int(match.group(2))}


async def test_a_client_with_a_60_s_limit_follows_a_12_s_clip_to_completion_by_the_tools_advice(
    tmp_path: Path,
) -> None:
    rig = Rig(root=tmp_path, speed=1.0)  # real-service timing: a 12 s clip renders for minutes
    async with rig.client() as client:
        timed = TimedClient(client, rig.clock)
        answer = await timed.call(
            "generate", {"prompt": "a paper boat drifts", "seconds": 12, "wait_seconds": 600}
        )
        assert answer["videos"][0]["status"] != "completed"  # a long wait asked for is shortened
        calls = 0
        while (video := answer.get("video") or answer["videos"][0])["status"] != "completed":
            tool, arguments = advised_call(answer["next_step"])
            assert arguments["wait_seconds"] <= 45
            answer = await timed.call(tool, arguments)
            calls += 1
            assert calls < 20
    assert video["files"]["video"]
    assert calls >= 2  # it took several calls, each ending in time
    assert max(timed.durations) <= 55


async def test_every_recommended_wait_is_at_most_45_seconds(rig: Rig) -> None:
    settings = Settings.from_env(backend="emulator")
    async with rig.client() as client:
        tools = (await client.list_tools()).tools
        texts = [tool.description or "" for tool in tools] + [json.dumps(t.input_schema) for t in tools]
        for prompt in (await client.list_prompts()).prompts:
            values = {a.name: "x" for a in prompt.arguments or [] if a.required}
            message = (await client.get_prompt(prompt.name, values)).messages[0].content
            assert isinstance(message, TextContent)
            texts.append(message.text)
        for resource in (await client.list_resources()).resources:
            if str(resource.uri).startswith("sora://guides"):
                contents = (await client.read_resource(str(resource.uri))).contents[0]
                texts.append(getattr(contents, "text", ""))
    texts.append(instructions(settings))
    waits = [int(w) for text in texts for w in re.findall(r"wait_seconds=(\d+)", text)]
    assert waits and max(waits) <= 45
    lacking = [t[:80] for t in texts if "wait_seconds=" in t and "again" not in t.lower()]
    assert not lacking


async def test_the_longest_wait_is_a_setting_of_at_most_55_seconds(tmp_path: Path) -> None:
    from sora_mcp.errors import ConfigError

    assert Settings.from_env({}, backend="emulator").max_wait_seconds == 50
    assert Settings.from_env({"SORA_MCP_MAX_WAIT_SECONDS": "20"}, backend="emulator").max_wait_seconds == 20
    with pytest.raises(ConfigError, match="SORA_MCP_MAX_WAIT_SECONDS"):
        Settings.from_env({"SORA_MCP_MAX_WAIT_SECONDS": "300"}, backend="emulator")
    rig = Rig(root=tmp_path, speed=1.0)
    async with rig.client(max_wait_seconds=20) as client:
        timed = TimedClient(client, rig.clock)
        started = await timed.call("generate", {"prompt": "a kite", "wait_seconds": 55})
        batch = await timed.call("batch", {"requests": [{"prompt": "a kite"}], "mode": "direct"})
        await timed.call("get_batch", {"batch_id": batch["batch_id"], "wait_seconds": 55})
    assert started["videos"][0]["status"] != "completed"
    assert "wait_seconds=20" in started["next_step"]
    assert max(timed.durations) <= 21


# ---- protocol errors -------------------------------------------------------------------------


async def test_unknown_resources_and_prompts_are_protocol_errors_in_the_projects_words(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with rig.client() as client:
        with pytest.raises(MCPError) as video:
            await client.read_resource("sora://videos/video_nope")
        with pytest.raises(MCPError) as unknown:
            await client.read_resource("sora://nothing")
        with pytest.raises(MCPError) as prompt:
            await client.get_prompt("make_me_an_ad", {})
        with pytest.raises(MCPError) as arguments:
            await client.get_prompt("ad_variants", {"product": "a bottle"})
    assert video.value.code == INVALID_PARAMS and "list_videos" in video.value.message
    assert unknown.value.code == INVALID_PARAMS
    assert (
        "sora://capabilities" in unknown.value.message and "sora://videos/{video_id}" in unknown.value.message
    )
    assert prompt.value.code == INVALID_PARAMS and "ad_variants" in prompt.value.message
    assert arguments.value.code == INVALID_PARAMS and "headline" in arguments.value.message
    assert not [r for r in caplog.records if r.exc_info], "an expected error was logged with a traceback"


# ---- context budget and previews ---------------------------------------------------------------


async def test_tools_list_fits_the_context_budget(rig: Rig) -> None:
    async with rig.client() as client:
        listed = await client.list_tools()
    size = len(
        json.dumps(listed.model_dump(mode="json", by_alias=True, exclude_none=True), separators=(",", ":"))
    )
    assert size <= TOOLS_LIST_BUDGET, size
    for tool in listed.tools:
        description = tool.description or ""
        assert not re.search(r"^\s{4,}", description, re.MULTILINE), tool.name  # dedented
        # No parameter's description is repeated in the tool's own text.
        for prop in tool.input_schema["properties"].values():
            assert prop.get("description", "\0") not in description, tool.name
        assert "title" not in json.dumps(tool.input_schema["properties"])


async def test_the_inline_preview_comes_on_first_completion_or_on_request(rig: Rig) -> None:
    async with rig.client() as client:
        started = structured(await client.call_tool("generate", {"prompt": "a lantern"}))
        video_id = started["videos"][0]["id"]
        first = await client.call_tool("get_video", {"video_id": video_id, "wait_seconds": 45})
        again = await client.call_tool("get_video", {"video_id": video_id})
        asked = await client.call_tool("get_video", {"video_id": video_id, "preview": True})
    assert structured(first)["video"]["status"] == "completed"
    previews = [sum(isinstance(b, ImageContent) for b in r.content) for r in (first, again, asked)]
    assert previews == [1, 0, 1]


# ---- local files -------------------------------------------------------------------------------


async def test_a_local_image_outside_the_folders_names_the_setting_that_would_allow_it(
    rig: Rig, tmp_path: Path
) -> None:
    pictures = tmp_path / "Pictures"
    pictures.mkdir()
    (pictures / "cat.png").write_bytes(png_bytes(64, 64))
    async with rig.client() as client:
        refused = tool_error(
            await client.call_tool("generate", {"prompt": "x", "image": str(pictures / "cat.png")})
        )
        missing = tool_error(
            await client.call_tool("generate", {"prompt": "x", "image": str(pictures / "dog.png")})
        )
    assert (refused["code"], refused["param"]) == ("path_not_allowed", "image")
    assert f"SORA_MCP_INPUT_DIRS={pictures.resolve()}" in refused["message"]
    assert (missing["code"], missing["param"]) == ("file_not_found", "image")
    assert "outside the folders" not in missing["message"]
    async with rig.client(input_roots=str(pictures.resolve())) as client:
        allowed = structured(
            await client.call_tool("generate", {"prompt": "x", "image": str(pictures / "cat.png")})
        )
    assert allowed["videos"][0]["image_reference"]


async def test_the_clients_declared_roots_are_allowed_input_folders(rig: Rig, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "cat.png").write_bytes(png_bytes(64, 64))

    async def roots(_context: object) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=shared.resolve().as_uri(), name="shared")])

    image = str(shared / "cat.png")
    async with rig.client(client_args={"list_roots_callback": roots}) as client:
        allowed = structured(await client.call_tool("generate", {"prompt": "x", "image": image}))
    async with rig.client() as client:
        refused = tool_error(await client.call_tool("generate", {"prompt": "x", "image": image}))
    assert allowed["videos"][0]["image_reference"]
    assert refused["code"] == "path_not_allowed"


def test_build_server_gives_the_strict_server(tmp_path: Path) -> None:
    from sora_mcp.server.protocol import SoraMCPServer

    assert isinstance(build_server(Settings.from_env(backend="emulator")), SoraMCPServer)
