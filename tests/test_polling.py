"""wait_for_video with a FakeClock: heartbeats, the deadline, the server's poll-after hint."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest

from sora_mcp.api.client import VideosClient
from sora_mcp.api.models import Video
from sora_mcp.api.polling import wait_for_video
from sora_mcp.api.retry import RetryPolicy
from sora_mcp.clock import FakeClock
from sora_mcp.errors import NotFoundError

State = tuple[str, int, int | None]  # (status, progress, openai-poll-after-ms)


class Job:
    """Answers each GET with the next scripted state; the last one repeats for ever."""

    def __init__(self, *states: State | int) -> None:
        self.states = list(states)
        self.polls = 0

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        assert request.method == "GET"
        self.polls += 1
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        if isinstance(state, int):
            return httpx2.Response(state, json={"error": {"message": "scripted failure"}})
        status, progress, poll_after = state
        headers = {"openai-poll-after-ms": str(poll_after)} if poll_after is not None else {}
        body = {"id": "video_1", "object": "video", "status": status, "progress": progress}
        if status == "failed":
            body["error"] = {"code": "moderation_blocked", "message": "blocked"}
        return httpx2.Response(200, json=body, headers=headers)


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int | None, float]] = []

    async def __call__(self, video: Video, elapsed: float) -> None:
        self.calls.append((video.status, video.progress, elapsed))


@asynccontextmanager
async def client_for(job: Job, clock: FakeClock, **options: Any) -> AsyncIterator[VideosClient]:
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(job), base_url="http://backend/v1") as http:
        yield VideosClient(http, clock=clock, **options)


@pytest.mark.anyio
async def test_a_long_server_poll_interval_is_cut_into_heartbeats_each_reported() -> None:
    # Progress that does not move gives no finish estimate, so the server's 20 s pace holds.
    job = Job(("in_progress", 10, 20_000), ("in_progress", 10, 20_000), ("completed", 100, None))
    clock, progress = FakeClock(), Progress()
    async with client_for(job, clock) as client:
        video = await wait_for_video(
            client, "video_1", timeout=600, clock=clock, on_progress=progress, heartbeat=5
        )

    assert video.status == "completed"
    assert job.polls == 3
    assert clock.slept == [5.0] * 8
    assert [elapsed for _, _, elapsed in progress.calls] == [0, 5, 10, 15, 20, 25, 30, 35, 40]
    assert [pct for _, pct, _ in progress.calls] == [10] * 8 + [100]


@pytest.mark.anyio
async def test_without_a_server_hint_the_interval_grows_by_half_up_to_the_maximum() -> None:
    job = Job(*[("queued", 0, None)] * 6, ("completed", 100, None))
    clock = FakeClock()
    async with client_for(job, clock) as client:
        await wait_for_video(client, "video_1", timeout=600, clock=clock, heartbeat=60, max_interval=4.0)

    assert clock.slept == [1.0, 1.5, 2.25, 3.375, 4.0, 4.0]


@pytest.mark.anyio
async def test_the_deadline_returns_the_last_seen_running_video_without_sleeping_past_it() -> None:
    job = Job(*[("in_progress", pct, None) for pct in range(0, 100, 5)])
    clock, progress = FakeClock(), Progress()
    start = clock.now()
    async with client_for(job, clock) as client:
        video = await wait_for_video(
            client, "video_1", timeout=30, clock=clock, on_progress=progress, heartbeat=5, max_interval=10
        )

    assert video.status == "in_progress"
    assert video.progress == (job.polls - 1) * 5
    assert clock.now() - start == pytest.approx(30.0)
    assert all(piece <= 5.0 for piece in clock.slept)
    last_status, last_progress, last_elapsed = progress.calls[-1]
    assert (last_status, last_progress) == ("in_progress", video.progress)
    assert last_elapsed == pytest.approx(30.0)


@pytest.mark.anyio
async def test_heartbeats_keep_coming_at_most_heartbeat_seconds_apart() -> None:
    job = Job(("queued", 0, 17_000))
    clock, progress = FakeClock(), Progress()
    async with client_for(job, clock) as client:
        await wait_for_video(client, "video_1", timeout=100, clock=clock, on_progress=progress, heartbeat=5)

    elapsed = [0.0] + [e for _, _, e in progress.calls]
    assert max(b - a for a, b in itertools.pairwise(elapsed)) <= 5.0 + 1e-6
    assert elapsed[-1] == pytest.approx(100.0)


@pytest.mark.anyio
async def test_a_failed_job_is_returned_not_raised() -> None:
    job = Job(("in_progress", 40, 1000), ("failed", 40, None))
    clock = FakeClock()
    async with client_for(job, clock) as client:
        video = await wait_for_video(client, "video_1", timeout=60, clock=clock)

    assert video.status == "failed"
    assert video.error is not None
    assert video.error.code == "moderation_blocked"


@pytest.mark.anyio
async def test_a_job_already_finished_is_returned_after_one_poll_without_sleeping() -> None:
    job = Job(("succeeded", 100, 5000))
    clock = FakeClock()
    async with client_for(job, clock) as client:
        video = await wait_for_video(client, "video_1", timeout=60, clock=clock)

    assert video.status == "completed"
    assert (job.polls, clock.slept) == (1, [])


@pytest.mark.anyio
async def test_a_transient_failure_mid_wait_does_not_end_the_wait() -> None:
    job = Job(("in_progress", 10, 2000), 503, ("completed", 100, None))
    clock, progress = FakeClock(), Progress()
    async with client_for(job, clock, retry=RetryPolicy(max_retries=0)) as client:
        video = await wait_for_video(client, "video_1", timeout=60, clock=clock, on_progress=progress)

    assert video.status == "completed"
    assert job.polls == 3
    assert [status for status, _, _ in progress.calls] == ["in_progress", "in_progress", "completed"]


@pytest.mark.anyio
async def test_an_unknown_video_raises_on_the_first_poll() -> None:
    job = Job(404)
    clock = FakeClock()
    async with client_for(job, clock) as client:
        with pytest.raises(NotFoundError):
            await wait_for_video(client, "video_1", timeout=60, clock=clock)


@pytest.mark.anyio
async def test_a_zero_timeout_polls_once_and_returns() -> None:
    job = Job(("queued", 0, None))
    clock = FakeClock()
    async with client_for(job, clock) as client:
        video = await wait_for_video(client, "video_1", timeout=0, clock=clock)

    assert (video.status, job.polls, clock.slept) == ("queued", 1, [])
