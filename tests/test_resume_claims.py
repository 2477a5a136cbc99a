"""The background resumer on a fleet: every server sharing the registry runs one, and each
unfinished video is followed by the one that claimed it; another takes a video over only when
that claim lapses (its server died)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.lowlevel
import httpx2
import pytest

from helpers import Rig
from sora_mcp.api.client import VideosClient
from sora_mcp.api.profile import EMULATOR
from sora_mcp.clock import FakeClock
from sora_mcp.config import Settings
from sora_mcp.registry.records import VideoRecord
from sora_mcp.registry.store import Registry
from sora_mcp.studio.planning import plan_clip
from sora_mcp.studio.resume import Resumer
from sora_mcp.studio.studio import Studio

pytestmark = pytest.mark.anyio

OTHER = "other-host:4242:0a1b2c3d"
"""Another server of the fleet, holding a claim in the shared registry."""


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(root=tmp_path)


@asynccontextmanager
async def studio_on(rig: Rig) -> AsyncIterator[Studio]:
    settings = Settings.from_env(backend="emulator")
    with Registry.open(settings.registry_dir, now=rig.clock.now) as registry:
        async with httpx2.AsyncClient(transport=rig.transport, base_url="http://emulator/v1") as http:
            client = VideosClient(http, profile=EMULATOR, clock=rig.clock)
            yield Studio(settings=settings, client=client, registry=registry, clock=rig.clock)


async def _running_job(studio: Studio) -> VideoRecord:
    """A job an earlier process started (one POST) and left running."""
    plan = plan_clip(prompt="a lighthouse beam sweeps the fog", model="sora-2", size="720x1280", seconds=4)
    (record,) = (await studio.generate(plan)).records
    assert record.id is not None and record.status in ("queued", "in_progress")
    return record


def _on_lease_clock(studio: Studio, lease: FakeClock) -> None:
    """Claims on a fake wall clock of their own: waits for a lapse are instant and measurable."""
    studio.claims.clock = lease
    studio.claims.lease_seconds = 30


def _polls(rig: Rig, record: VideoRecord) -> int:
    assert record.id is not None
    return sum(method == "GET" and record.id in path for method, path in rig.transport.requests)


async def test_a_video_another_server_follows_is_left_to_it_and_never_polled_here(rig: Rig) -> None:
    lease = FakeClock()
    start = lease.now()
    async with studio_on(rig) as studio:
        record = await _running_job(studio)
        _on_lease_clock(studio, lease)
        polls = _polls(rig, record)
        assert studio.registry.claim_work(
            f"follow:{record.local_id}", owner=OTHER, lease_now=lease.now(), lease_seconds=3600
        )

        async def the_other_server_settles_it() -> None:
            while not lease.slept:  # once the resumer here has found the video claimed
                await anyio.lowlevel.checkpoint()
            studio.registry.update_video(record.local_id, status="failed", error_code="moderation_blocked")

        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                group.start_soon(the_other_server_settles_it)
                await Resumer(studio).run()

    assert _polls(rig, record) == polls  # not one status read or download for it here
    assert lease.now() < start + 3600  # it returned once the holder finished, not at the lapse


async def test_a_video_whose_server_died_is_taken_over_once_its_claim_lapses(rig: Rig) -> None:
    lease = FakeClock()
    async with studio_on(rig) as studio:
        record = await _running_job(studio)
        _on_lease_clock(studio, lease)
        claimed_at = lease.now()
        studio.registry.claim_work(
            f"follow:{record.local_id}", owner=OTHER, lease_now=claimed_at, lease_seconds=30
        )
        with anyio.fail_after(10):
            await Resumer(studio).run()
        done = studio.registry.get_video(record.local_id)

    assert done is not None and done.status == "completed"
    assert Path(done.files["video"]).is_file()
    assert lease.now() >= claimed_at + 30  # taken over only after the claim lapsed
    assert rig.transport.count("POST", "/videos") == 1  # followed, never sent again


async def test_the_resumer_releases_what_it_finished_and_holds_nothing_after(rig: Rig) -> None:
    async with studio_on(rig) as studio:
        record = await _running_job(studio)
        _on_lease_clock(studio, FakeClock())
        with anyio.fail_after(10):
            await Resumer(studio).run()
        free = studio.registry.claim_work(
            f"follow:{record.local_id}", owner=OTHER, lease_now=FakeClock().now(), lease_seconds=30
        )
    assert free  # the claim was released, not left to lapse
