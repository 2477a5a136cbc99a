"""A whole production through the MCP client, as an assistant would run it: a character from a
generated clip, two clips with it, one extended twice and edited, a batch in each mode with one
item refused by moderation — then a new server on the same registry shows every id, its lineage
and the batches' final state, without sending anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from helpers import Rig, structured
from sora_mcp.media.video import probe

pytestmark = pytest.mark.anyio

CHARACTER = "Bramble the paper fox"


def _batch(tag: str) -> list[dict[str, Any]]:
    requests: list[dict[str, Any]] = [
        {"custom_id": f"{tag}-{n}", "prompt": f"ad variant {n}: a kettle whistles on a {colour} stove"}
        for n, colour in enumerate(("red", "green", "blue", "white"), start=1)
    ]
    requests.insert(2, {"custom_id": f"{tag}-bad", "prompt": "a refused shot [fail:moderation_blocked]"})
    return requests


async def test_a_production_survives_into_a_new_session(tmp_path: Path) -> None:
    rig = Rig(root=tmp_path)
    async with rig.client() as client:
        # 1. A source clip, and a character cut from it.
        source = structured(
            await client.call_tool(
                "generate", {"prompt": "a folded paper fox trots across a desk", "wait_seconds": 600}
            )
        )["videos"][0]
        character = structured(
            await client.call_tool(
                "create_character",
                {"name": CHARACTER, "video_id": source["id"], "start_seconds": 0.5, "seconds": 3},
            )
        )
        assert character["clip_seconds"] == pytest.approx(3.0, abs=0.1)
        char_id = character["character"]["id"]

        # 2. Two clips with the character.
        clips = []
        for action in ("leaps over a teacup", "naps in a sunbeam"):
            result = structured(
                await client.call_tool(
                    "generate",
                    {"prompt": f"{CHARACTER} {action}", "characters": [CHARACTER], "wait_seconds": 600},
                )
            )
            clips.append(result["videos"][0])
        assert all(c["status"] == "completed" and c["character_ids"] == [char_id] for c in clips)

        # 3. Extend one twice: the file is the stitched whole.
        first_ext = structured(
            await client.call_tool(
                "extend",
                {
                    "video_id": clips[0]["id"],
                    "prompt": "it lands and looks back",
                    "seconds": 4,
                    "wait_seconds": 600,
                },
            )
        )
        second_ext = structured(
            await client.call_tool(
                "extend",
                {
                    "video_id": first_ext["video"]["id"],
                    "prompt": "it bows to the camera",
                    "seconds": 8,
                    "wait_seconds": 600,
                },
            )
        )
        stitched = second_ext["video"]
        assert stitched["seconds"] == 16
        assert second_ext["budget"]["extensions_left"] == 4
        assert probe(Path(stitched["files"]["video"])).seconds == pytest.approx(16.0, abs=0.01)

        # 4. Edit it: one change, a new id.
        edited = structured(
            await client.call_tool(
                "edit",
                {
                    "video_id": stitched["id"],
                    "prompt": "same shot, switch to warm evening light",
                    "wait_seconds": 600,
                },
            )
        )
        assert edited["relation"] == "edit"
        assert edited["video"]["parent_id"] == stitched["id"]

        # 5. A batch of five in each mode, one refused by moderation.
        batches = {}
        for mode in ("native", "direct"):
            started = structured(await client.call_tool("batch", {"requests": _batch(mode), "mode": mode}))
            assert started["estimated_total_usd"] == pytest.approx(2.0)
            done = structured(
                await client.call_tool("get_batch", {"batch_id": started["batch_id"], "wait_seconds": 1800})
            )
            assert done["still_running"] is False
            assert done["totals"].get("completed") == 4
            assert done["items"][f"{mode}-bad"]["status"] == "failed"
            assert done["items"][f"{mode}-bad"]["error"]["code"] == "moderation_blocked"
            for custom_id, item in done["items"].items():
                if custom_id != f"{mode}-bad":
                    assert probe(Path(item["files"]["video"])).seconds == pytest.approx(4.0, abs=0.01)
            batches[mode] = done

    posts_in_first_session = rig.transport.count("POST")
    made = [source, *clips, first_ext["video"], stitched, edited["video"]]

    # A new session over the same registry: everything is there, with lineage; nothing is sent.
    async with rig.client() as client:
        listed = structured(await client.call_tool("list_videos", {"limit": 200}))
        lineage = structured(await client.call_tool("get_video", {"video_id": stitched["id"]}))
        characters = structured(await client.call_tool("list_characters", {}))
        again = {
            mode: structured(await client.call_tool("get_batch", {"batch_id": batch["batch_id"]}))
            for mode, batch in batches.items()
        }
    assert rig.transport.count("POST") == posts_in_first_session

    listed_ids = {v["id"] for v in listed["videos"]}
    assert {v["id"] for v in made} <= listed_ids
    assert listed["count"] == len(made) + 10  # 5 items in each batch
    assert lineage["parent"]["id"] == first_ext["video"]["id"]
    assert lineage["parent"]["relation"] == "extension"
    assert [c["id"] for c in lineage["children"]] == [edited["video"]["id"]]
    assert [c["name"] for c in characters["characters"]] == [CHARACTER]
    for mode, batch in again.items():
        assert batch["status"] == batches[mode]["status"]
        assert batch["totals"] == batches[mode]["totals"]
        assert batch["items"][f"{mode}-bad"]["error"]["code"] == "moderation_blocked"
