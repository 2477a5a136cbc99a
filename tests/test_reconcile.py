"""No double billing: a create whose answer is lost is sent once, recorded as 'unknown', and
then found on the backend by listing — never by sending it again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest

from sora_mcp.api.client import VideosClient
from sora_mcp.api.profile import EMULATOR
from sora_mcp.clock import FakeClock
from sora_mcp.config import Settings
from sora_mcp.emulator.app import create_app
from sora_mcp.registry.store import Registry
from sora_mcp.studio.reconcile import GIVE_UP_SECONDS, needs_reconciling, reconcile
from sora_mcp.studio.studio import Studio, plan_clip

pytestmark = pytest.mark.anyio


class LosesCreateAnswers(httpx2.AsyncBaseTransport):
    """Delivers every request; for `POST /videos` it lets the backend accept the job, then drops
    the answer as a read timeout would (`deliver=False` drops it before it arrives)."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, *, deliver: bool = True) -> None:
        self.inner = inner
        self.deliver = deliver
        self.armed = True
        self.posts = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method == "POST" and request.url.path.endswith("/videos"):
            self.posts += 1
            if self.armed:
                if self.deliver:
                    response = await self.inner.handle_async_request(request)
                    await response.aread()
                raise httpx2.ReadTimeout("timed out waiting for the answer", request=request)
        return await self.inner.handle_async_request(request)


async def _studio(
    tmp_path: Path, clock: FakeClock, transport: httpx2.AsyncBaseTransport
) -> AsyncIterator[Studio]:
    settings = Settings.from_env(backend="emulator")
    with Registry.open(tmp_path / "registry", now=clock.now) as registry:
        async with httpx2.AsyncClient(transport=transport, base_url="http://emulator/v1") as http:
            client = VideosClient(http, profile=EMULATOR, clock=clock)
            yield Studio(settings=settings, client=client, registry=registry, clock=clock)


async def test_a_create_whose_answer_is_lost_is_found_not_resent(tmp_path: Path, clock: FakeClock) -> None:
    app = create_app(root=tmp_path / "emulator", clock=clock, speed=50, render_fps=4)
    transport = LosesCreateAnswers(httpx2.ASGITransport(app=app))
    async for studio in _studio(tmp_path, clock, transport):
        outcome = await studio.generate(
            plan_clip(prompt="a moth circles a lamp", model="sora-2", size="720x1280", seconds=4)
        )
        (answered,) = outcome.records  # the lost request is in the answer, status unknown
        assert (answered.status, answered.id) == ("unknown", None)
        assert outcome.errors
        (lost,) = studio.registry.list_videos()
        assert lost.local_id == answered.local_id
        assert lost.status == "unknown"
        assert lost.id is None
        assert needs_reconciling(lost, clock.now())

        transport.armed = False
        found = await reconcile(lost, client=studio.client, registry=studio.registry, clock=clock)
        on_backend = (await studio.client.list_videos(limit=100)).data

    assert transport.posts == 1
    assert [v.id for v in on_backend] == [found.id]
    assert found.local_id == lost.local_id
    assert found.status in ("queued", "in_progress")


async def test_a_lost_request_that_never_arrived_is_settled_without_resending(
    tmp_path: Path, clock: FakeClock
) -> None:
    app = create_app(root=tmp_path / "emulator", clock=clock, speed=50, render_fps=4)
    transport = LosesCreateAnswers(httpx2.ASGITransport(app=app), deliver=False)
    async for studio in _studio(tmp_path, clock, transport):
        await studio.generate(plan_clip(prompt="never arrives", model="sora-2", size="720x1280", seconds=4))
        (lost,) = studio.registry.list_videos()
        still = await reconcile(lost, client=studio.client, registry=studio.registry, clock=clock)
        assert still.status == "unknown"
        clock.advance(GIVE_UP_SECONDS + 1)
        settled = await reconcile(still, client=studio.client, registry=studio.registry, clock=clock)
    assert settled.status == "failed"
    assert settled.error_code == "request_lost"
    assert transport.posts == 1


async def test_a_job_already_recorded_elsewhere_is_not_claimed_twice(
    tmp_path: Path, clock: FakeClock
) -> None:
    app = create_app(root=tmp_path / "emulator", clock=clock, speed=50, render_fps=4)
    transport = LosesCreateAnswers(httpx2.ASGITransport(app=app))
    async for studio in _studio(tmp_path, clock, transport):
        plan = plan_clip(prompt="same prompt twice", model="sora-2", size="720x1280", seconds=4)
        transport.armed = False
        (known,) = (await studio.generate(plan)).records
        transport.armed = True
        await studio.generate(plan)
        lost = next(r for r in studio.registry.list_videos() if r.id is None)
        transport.armed = False
        found = await reconcile(lost, client=studio.client, registry=studio.registry, clock=clock)
    assert found.id is not None
    assert found.id != known.id
