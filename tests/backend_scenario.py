"""The production scenario every backend must carry, through the MCP client: generate, wait,
download a real WebP thumbnail, extend, edit, a character and a clip starring it, a batch,
get_batch, list, delete. It returns what each step answered so a test can check how the
backend did it (natively, or by which labelled fallback)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from mcp import Client

from helpers import structured
from sora_mcp.media.images import sniff_image
from sora_mcp.media.video import frame_at, probe

CHARACTER = "Pip the tin robot"
WAIT = 900


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return structured(await client.call_tool(tool, arguments))


def frames_match(a: Path, b: Path, at: float = 0.0) -> bool:
    """The frames of two videos at `at` seconds look alike (mean absolute difference < 8/255)."""
    left = np.asarray(frame_at(a, at).convert("RGB"), dtype=np.int16)
    right = np.asarray(frame_at(b, at).convert("RGB"), dtype=np.int16)
    return left.shape == right.shape and float(np.abs(left - right).mean()) < 8.0


async def run_scenario(client: Client) -> dict[str, Any]:
    steps: dict[str, Any] = {}
    source = (await call(client, "generate", {"prompt": "a tin robot waters a fern", "wait_seconds": WAIT}))[
        "videos"
    ][0]
    assert source["status"] == "completed", source
    steps["generate"] = source

    thumb = await call(client, "download", {"video_id": source["id"], "variant": "thumbnail"})
    path = Path(thumb["files"]["thumbnail"])
    assert sniff_image(path.read_bytes()[:16]) == "webp", path.read_bytes()[:16]
    steps["thumbnail"] = thumb

    extended = await call(
        client, "extend", {"video_id": source["id"], "prompt": "it looks up at the sky", "wait_seconds": WAIT}
    )
    assert extended["video"]["status"] == "completed", extended
    assert extended["problem"] is None
    whole = Path(extended["video"]["files"]["video"])
    assert extended["video"]["seconds"] == 8
    assert abs(probe(whole).seconds - 8.0) < 0.05, probe(whole)
    assert frames_match(whole, Path(source["files"]["video"])), "the extension must begin with the source"
    steps["extend"] = extended

    edited = await call(
        client, "edit", {"video_id": source["id"], "prompt": "make the fern blue", "wait_seconds": WAIT}
    )
    assert edited["video"]["status"] == "completed", edited
    steps["edit"] = edited

    character = await call(
        client, "create_character", {"name": CHARACTER, "video_id": source["id"], "start_seconds": 0.5}
    )
    starring = (
        await call(
            client,
            "generate",
            {"prompt": f"{CHARACTER} dances", "characters": [CHARACTER], "wait_seconds": WAIT},
        )
    )["videos"][0]
    assert starring["status"] == "completed", starring
    steps["character"] = character
    steps["starring"] = starring

    requests = [{"custom_id": f"shot-{n}", "prompt": f"shot {n}: a kettle on a stove"} for n in (1, 2)]
    started = await call(client, "batch", {"requests": requests})
    done = await call(client, "get_batch", {"batch_id": started["batch_id"], "wait_seconds": WAIT})
    assert done["still_running"] is False and done["totals"].get("completed") == 2, done
    steps["batch"] = started
    steps["get_batch"] = done

    listed = await call(client, "list_videos", {"limit": 50})
    assert source["id"] in {v["id"] for v in listed["videos"]}
    steps["list"] = listed

    steps["delete"] = await call(client, "delete_video", {"video_id": source["id"]})
    return steps
