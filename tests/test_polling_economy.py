"""Few status requests: a wait takes the answer that started it as its first poll, sleeps toward
the finish the progress rate predicts, and a finished, downloaded video costs no request at all.
Driven through the MCP client into the emulator over ASGI, on a fake clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import Rig, structured
from sora_mcp import catalog
from sora_mcp.clock import FakeClock

pytestmark = pytest.mark.anyio

# The emulator asks clients to poll about ten times per render (`openai-poll-after-ms`), which
# is what the openai SDK's poll loop does.
HINTED_POLLS = 10


def _status_gets(rig: Rig, video_id: str) -> int:
    return sum(1 for m, p in rig.transport.requests if m == "GET" and p.endswith(f"/videos/{video_id}"))


async def test_following_a_clip_takes_at_most_half_the_polls_the_server_hint_asks_for(tmp_path: Path) -> None:
    rig = Rig(root=tmp_path, speed=4.0)
    render = catalog.estimate_render_seconds("sora-2", 8) / rig.speed
    async with rig.client(emulator_speed=rig.speed) as client:
        started = structured(
            await client.call_tool("generate", {"prompt": "a kite over dunes", "seconds": 8})
        )
        video_id = started["videos"][0]["id"]
        began = rig.clock.now()
        done = structured(await client.call_tool("get_video", {"video_id": video_id, "wait_seconds": 40}))

    assert done["video"]["status"] == "completed"
    assert _status_gets(rig, video_id) <= HINTED_POLLS // 2
    # Seen completed within half a second of the instant the emulator finished it.
    assert 0 <= rig.clock.now() - began - render <= 0.5


async def test_a_wait_right_after_generate_uses_the_create_answer_as_its_first_poll(tmp_path: Path) -> None:
    rig = Rig(root=tmp_path, speed=4.0)
    async with rig.client(emulator_speed=rig.speed) as client:
        started = structured(
            await client.call_tool("generate", {"prompt": "rain on a tin roof", "wait_seconds": 40})
        )
    video_id = started["videos"][0]["id"]
    assert started["videos"][0]["status"] == "completed"
    post = rig.transport.requests.index(("POST", "/v1/videos"))
    first_get = next(
        i for i, (m, p) in enumerate(rig.transport.requests) if m == "GET" and p.endswith(video_id)
    )
    assert first_get > post
    assert _status_gets(rig, video_id) <= HINTED_POLLS // 2


async def test_a_completed_downloaded_video_is_answered_without_a_request_or_a_write(tmp_path: Path) -> None:
    rig = Rig(root=tmp_path)
    async with rig.client() as client:
        made = structured(await client.call_tool("generate", {"prompt": "a lantern", "wait_seconds": 40}))
        video_id = made["videos"][0]["id"]
        first = structured(await client.call_tool("get_video", {"video_id": video_id}))
        assert Path(first["video"]["files"]["video"]).is_file()
        requests_before = len(rig.transport.requests)
        again = structured(await client.call_tool("get_video", {"video_id": video_id}))

    assert len(rig.transport.requests) == requests_before
    assert again["video"] == first["video"]  # updated_at included: nothing was written


class CreepingClock(FakeClock):
    """Every reading is half a second after the last, like a machine too busy to keep up: a
    job that renders in milliseconds is already done when its create answer is written."""

    def now(self) -> float:
        self.advance(0.5)
        return super().now()


async def test_a_job_done_before_its_wait_begins_is_still_downloaded(tmp_path: Path) -> None:
    rig = Rig(root=tmp_path, clock=CreepingClock(), speed=2000.0)
    async with rig.client(emulator_speed=rig.speed) as client:
        made = structured(await client.call_tool("generate", {"prompt": "a comet", "wait_seconds": 40}))

    video = made["videos"][0]
    assert video["status"] == "completed"
    assert Path(video["files"]["video"]).is_file()
