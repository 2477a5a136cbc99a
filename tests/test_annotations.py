"""Honest annotations: each tool's hints are checked against what a call of it does here — the
files it writes or removes, the registry rows it changes, the requests it sends."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from helpers import Rig, structured
from sora_mcp.server.tools.table import TOOLS

pytestmark = pytest.mark.anyio


def snapshot(rig: Rig) -> dict[str, tuple[int, float]]:
    """Every file the server can touch (output folder, registry) with its size and time."""
    files: dict[str, tuple[int, float]] = {}
    for folder in (rig.root / "out", rig.root / "home" / "registry"):
        for path in folder.rglob("*") if folder.exists() else ():
            if path.is_file():
                info = path.stat()
                files[str(path)] = (info.st_size, info.st_mtime_ns)
    return files


async def _ready(client: Client) -> dict[str, Any]:
    """A completed video (not yet looked at), a running one, and a direct batch."""
    done = structured(await client.call_tool("generate", {"prompt": "a heron", "wait_seconds": 45}))
    running = structured(await client.call_tool("generate", {"prompt": "a crane"}))
    started = structured(
        await client.call_tool("batch", {"requests": [{"prompt": "a stork"}], "mode": "direct"})
    )
    return {
        "done": done["videos"][0]["id"],
        "running": running["videos"][0]["id"],
        "batch": started["batch_id"],
    }


CALLS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "generate": lambda ids: {"prompt": "an egret"},
    "get_video": lambda ids: {"video_id": ids["running"], "wait_seconds": 45},
    "download": lambda ids: {"video_id": ids["done"], "variant": "spritesheet"},
    "list_videos": lambda ids: {},
    "extend": lambda ids: {"video_id": ids["done"], "prompt": "it takes off"},
    "edit": lambda ids: {"video_id": ids["done"], "prompt": "make it dusk; keep the framing"},
    "create_character": lambda ids: {"name": "Heron", "video_id": ids["done"], "seconds": 3},
    "list_characters": lambda ids: {},
    "delete_video": lambda ids: {"video_id": ids["done"], "delete_files": True},
    "batch": lambda ids: {"requests": [{"prompt": "an ibis"}], "mode": "direct"},
    "get_batch": lambda ids: {"batch_id": ids["batch"], "wait_seconds": 45},
}


def test_every_tool_in_the_table_has_a_scenario() -> None:
    assert set(CALLS) == {spec.name for spec in TOOLS}


@pytest.mark.parametrize("spec", TOOLS, ids=lambda spec: spec.name)
async def test_each_tools_annotations_match_what_it_does(tmp_path: Path, spec: Any) -> None:
    rig = Rig(root=tmp_path)
    async with rig.client(home=str(tmp_path / "home"), output_dir=str(tmp_path / "out")) as client:
        ids = await _ready(client)
        rig.clock.advance(600)  # everything started above has finished on the backend
        before_files, sent_before = snapshot(rig), len(rig.transport.requests)
        first = await client.call_tool(spec.name, CALLS[spec.name](ids))
        assert not first.is_error, first.content
        after_files = snapshot(rig)
        requests = rig.transport.requests[sent_before:]
        await client.call_tool(spec.name, CALLS[spec.name](ids))  # the same call once more
        after_again = snapshot(rig)
        requests_again = rig.transport.requests[sent_before + len(requests) :]

    changed = before_files != after_files
    billable = [r for r in requests if r[0] == "POST"]
    removed = set(before_files) - set(after_files)
    tool = spec.annotations()
    if tool.read_only_hint:
        assert not changed and all(method == "GET" for method, _ in requests), spec.name
    else:
        assert changed or billable or removed, f"{spec.name} says it writes, but nothing changed"
    if not tool.open_world_hint:
        assert requests == [], f"{spec.name} says it stays local but reached the backend"
    assert tool.destructive_hint is bool(removed or any(m == "DELETE" for m, _ in requests)), spec.name
    posted_again = [r for r in requests_again if r[0] == "POST"]
    if tool.idempotent_hint:
        # Repeating the call adds nothing: no new file and no billable request.
        assert set(after_again) == set(after_files) and not posted_again, spec.name
    else:
        # Repeating it makes something new (a job, a registry row).
        assert posted_again or after_again != after_files, spec.name
    json.dumps(structured(first))  # a real answer, not an error
