"""Every wait ends: deadlines return the id, a cancelled wait stops polling but not the paid job,
and expired assets are reported clearly."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from helpers import Rig, structured, tool_error

pytestmark = pytest.mark.anyio


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(root=tmp_path)


async def test_a_cancelled_wait_stops_polling_but_not_the_job(rig: Rig) -> None:
    async with rig.client() as client:
        started = structured(await client.call_tool("generate", {"prompt": "a slow dawn", "seconds": 12}))
        video_id = started["videos"][0]["id"]
        polls_before = rig.transport.count("GET", f"/videos/{video_id}")

        with anyio.CancelScope() as scope:

            async def cancel_on_first_progress(
                progress: float, total: float | None, message: str | None
            ) -> None:
                scope.cancel()

            await client.call_tool(
                "get_video",
                {"video_id": video_id, "wait_seconds": 600},
                progress_callback=cancel_on_first_progress,
            )
        assert scope.cancelled_caught
        polls_after_cancel = rig.transport.count("GET", f"/videos/{video_id}")
        # Let any in-flight handler notice the cancellation, then make sure polling has stopped.
        for _ in range(20):
            await anyio.lowlevel.checkpoint()
        assert rig.transport.count("GET", f"/videos/{video_id}") == polls_after_cancel
        assert polls_after_cancel > polls_before

        listed = structured(await client.call_tool("list_videos", {}))
        assert listed["videos"][0]["status"] in ("queued", "in_progress")

        # The job kept running; a later call picks it up and downloads it.
        rig.clock.advance(3600)
        done = structured(await client.call_tool("get_video", {"video_id": video_id}))
    assert done["video"]["status"] == "completed"
    assert Path(done["video"]["files"]["video"]).is_file()
    assert rig.transport.count("POST", "/videos") == 1


async def test_a_wait_that_runs_out_returns_the_id_and_still_running(rig: Rig) -> None:
    async with rig.client() as client:
        started = structured(
            await client.call_tool("generate", {"prompt": "glacier", "model": "sora-2-pro", "seconds": 20})
        )
        start = rig.clock.now()
        waited = structured(
            await client.call_tool("get_video", {"video_id": started["videos"][0]["id"], "wait_seconds": 5})
        )
    assert waited["still_running"] is True
    assert rig.clock.now() - start <= 5 + 1  # never sleeps past the deadline (+ one poll)


async def test_expired_assets_are_reported_clearly(rig: Rig) -> None:
    async with rig.client() as client:
        started = structured(await client.call_tool("generate", {"prompt": "sandcastle at high tide"}))
        video_id = started["videos"][0]["id"]
        rig.clock.advance(10 * 86_400)  # long past completion + expiry, never downloaded
        seen = structured(await client.call_tool("get_video", {"video_id": video_id}))
        refetch = await client.call_tool("download", {"video_id": video_id})
    assert seen["video"]["status"] == "completed"
    assert seen["video"]["files"] == {}
    assert seen["video"]["expires_at"] is not None
    assert "expire" in (seen["video"]["note"] or "").lower() or "no longer available" in (
        seen["video"]["note"] or ""
    )
    assert tool_error(refetch)["kind"] == "asset_expired"
    assert "no longer available" in tool_error(refetch)["message"]
