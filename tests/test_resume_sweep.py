"""The resumer's sweep while the server runs: what another server of the fleet held and gave up
(it died: its claim lapsed) is taken over without a restart, and what it still holds is left
alone. Two studios share one registry here, each with claims of its own, on fake clocks: sweeps
sleep on the claims' clock (`lease`), which they move on, and polls on the studio's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.lowlevel
import httpx2
import pytest

from helpers import CountingTransport, Rig
from sora_mcp.api.client import VideosClient
from sora_mcp.api.profile import EMULATOR
from sora_mcp.clock import FakeClock
from sora_mcp.config import Settings
from sora_mcp.registry.records import VideoRecord
from sora_mcp.registry.store import Registry
from sora_mcp.studio.downloads import has_file
from sora_mcp.studio.resume import Resumer
from sora_mcp.studio.studio import Studio
from test_resume_claims import _on_lease_clock, _running_job

pytestmark = pytest.mark.anyio

SWEEP_EVERY = 1.0
"""Seconds between sweeps (of the lease clock): many sweeps before a 30 s claim lapses."""


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(root=tmp_path)


@asynccontextmanager
async def two_studios(rig: Rig) -> AsyncIterator[tuple[Studio, Studio, CountingTransport]]:
    """The other server (on the rig's transport) and this one (on a transport of its own, so
    what this one sends is counted apart), sharing one registry, claims on `lease`."""
    settings = Settings.from_env(backend="emulator")
    here_transport = CountingTransport(httpx2.ASGITransport(app=rig.app))
    with Registry.open(settings.registry_dir, now=rig.clock.now) as registry:
        async with (
            httpx2.AsyncClient(transport=rig.transport, base_url="http://emulator/v1") as there_http,
            httpx2.AsyncClient(transport=here_transport, base_url="http://emulator/v1") as here_http,
        ):
            studios = [
                Studio(
                    settings=settings,
                    client=VideosClient(http, profile=EMULATOR, clock=rig.clock),
                    registry=registry,
                    clock=rig.clock,
                )
                for http in (there_http, here_http)
            ]
            yield studios[0], studios[1], here_transport


async def until(check: Callable[[], bool]) -> None:
    while not check():
        await anyio.lowlevel.checkpoint()


def _sent(transport: CountingTransport, record: VideoRecord) -> int:
    assert record.id is not None
    return sum(record.id in path for _method, path in transport.requests)


async def test_a_video_whose_server_died_is_taken_over_by_a_running_resumer_and_fetched_once(
    rig: Rig,
) -> None:
    lease = FakeClock()
    async with two_studios(rig) as (there, here, sent_here):
        for studio in (there, here):
            _on_lease_clock(studio, lease)
        resumer = Resumer(here, sweep_every=SWEEP_EVERY)
        with anyio.fail_after(10):
            await resumer.run()  # at its start the registry held nothing to resume
        record = await _running_job(there)  # the other server started it (one POST)…
        work = f"follow:{record.local_id}"
        claimed_at = lease.now()
        assert there.claims.claim(work)  # …follows it, then dies: its claim is not renewed
        posts = rig.transport.count("POST", "/videos")

        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                group.start_soon(resumer.watch)
                lapse = claimed_at + here.claims.lease_seconds
                await until(lambda: lease.now() >= lapse - 5)  # sweeps while the claim is live
                sweeps_before, read_before = resumer.sweeps, _sent(sent_here, record)
                await until(lambda: here.claims.holds(work))
                taken_at = lease.now()
                await until(lambda: not here.claims.holds(work))  # followed to the end
                swept = resumer.sweeps
                await until(lambda: resumer.sweeps >= swept + 5)  # and nothing more happens
                group.cancel_scope.cancel()
        done = here.registry.get_video(record.local_id)

    assert sweeps_before >= 20 and read_before == 0  # not one read while the claim was live…
    assert taken_at >= lapse  # …taken over once it lapsed
    assert done is not None and done.status == "completed" and Path(done.files["video"]).is_file()
    assert sent_here.count("GET", "/content") == 2  # its MP4 and thumbnail, each once
    assert rig.transport.count("POST", "/videos") == posts and sent_here.count("POST") == 0


async def test_a_running_resumer_leaves_a_video_another_server_holds_to_it(rig: Rig) -> None:
    lease = FakeClock()
    async with two_studios(rig) as (there, here, sent_here):
        for studio in (there, here):
            _on_lease_clock(studio, lease)
        there.claims.lease_seconds = 3600  # live through all the sweeps below (20 s of them)
        resumer = Resumer(here, sweep_every=SWEEP_EVERY)
        record = await _running_job(there)
        assert there.claims.claim(f"follow:{record.local_id}")
        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                group.start_soon(resumer.watch)
                await until(lambda: resumer.sweeps >= 20)
                group.cancel_scope.cancel()
            (followed,) = await there.wait([record.local_id], timeout=3600)  # it finishes there

    assert _sent(sent_here, record) == 0 and sent_here.requests == []
    assert not here.claims.holds(f"follow:{record.local_id}")
    assert followed.status == "completed" and has_file(followed)


async def test_a_sweep_that_finds_nothing_sleeps_a_whole_lease_until_the_next(rig: Rig) -> None:
    lease = FakeClock()
    async with two_studios(rig) as (_there, here, sent_here):
        _on_lease_clock(here, lease)
        resumer = Resumer(here)
        assert resumer.sweep_every == here.claims.lease_seconds  # the default period
        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                group.start_soon(resumer.watch)
                await until(lambda: resumer.sweeps >= 4)
                group.cancel_scope.cancel()

    assert lease.slept[:4] == [here.claims.lease_seconds] * 4  # never spins between sweeps
    assert rig.clock.slept == []  # the studio's time is left alone
    assert sent_here.requests == []  # and an empty registry sends nothing


async def test_cancelling_a_sweep_mid_follow_stops_at_once_and_releases_the_claim(rig: Rig) -> None:
    lease = FakeClock()
    async with two_studios(rig) as (there, here, sent_here):
        for studio in (there, here):
            _on_lease_clock(studio, lease)
        record = await _running_job(there)  # started there, followed by nobody
        resumer = Resumer(here, sweep_every=SWEEP_EVERY)
        work = f"follow:{record.local_id}"
        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                group.start_soon(resumer.watch)
                await until(lambda: here.claims.holds(work) and _sent(sent_here, record) > 0)
                group.cancel_scope.cancel()

    assert not here.claims.holds(work)
    assert there.claims.claim(work)  # released at the cancel, not left to lapse
    assert sent_here.count("POST") == 0
