"""Studio.wait fetches the files of a video that was already over when the wait began — a fast
backend can answer the create itself with `completed`, and nothing must be left undownloaded."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest

from sora_mcp.api.client import VideosClient
from sora_mcp.api.profile import EMULATOR
from sora_mcp.clock import FakeClock
from sora_mcp.config import Settings
from sora_mcp.emulator.app import create_app
from sora_mcp.media.video import probe
from sora_mcp.registry.store import Registry
from sora_mcp.studio.studio import Studio, plan_clip

pytestmark = pytest.mark.anyio


async def test_a_video_already_completed_when_the_wait_begins_is_downloaded(
    tmp_path: Path, clock: FakeClock
) -> None:
    app = create_app(root=tmp_path / "emulator", clock=clock, speed=50, render_fps=4)
    settings = Settings.from_env(backend="emulator")
    with Registry.open(tmp_path / "registry", now=clock.now) as registry:
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://e/v1"
        ) as http:
            studio = Studio(
                settings=settings,
                client=VideosClient(http, profile=EMULATOR, clock=clock),
                registry=registry,
                clock=clock,
            )
            outcome = await studio.generate(
                plan_clip(prompt="a moth circles a lamp", model="sora-2", size="1280x720", seconds=4)
            )
            (started,) = outcome.records
            await clock.sleep(600)
            over = await studio.refresh(started.local_id, auto_download=False)
            assert (over.status, over.files) == ("completed", {})

            (done,) = await studio.wait([started.local_id], timeout=30)

    assert sorted(done.files) == ["thumbnail", "video"]
    assert probe(Path(done.files["video"])).width == 1280
