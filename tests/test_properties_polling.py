"""Property-based tests (hypothesis) of polling: whatever a backend answers to the polls of a
job — any status string, progress value, poll-after hint, error status or Retry-After — the wait
ends by its deadline on the fake clock, and status normalisation is stable."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
from hypothesis import given, settings
from hypothesis import strategies as st

from sora_mcp.api.client import VideosClient
from sora_mcp.api.models import Video
from sora_mcp.api.polling import wait_for_video
from sora_mcp.api.profile import OPENAI
from sora_mcp.api.retry import RetryPolicy
from sora_mcp.clock import FakeClock
from sora_mcp.errors import APIError

Json = Any

_STATUSES = st.one_of(
    st.sampled_from(
        ("queued", "in_progress", "completed", "failed", "processing", "Succeeded ", "CANCELLED", "done")
    ),
    st.text(max_size=12),
)
_POLL_AFTER = st.one_of(
    st.none(),
    st.sampled_from(("0", "-5", "1e12", "nan", "inf", "soon", "", "250.5")),
    st.integers(0, 120_000).map(str),
)
_ANSWER = st.one_of(
    st.tuples(_STATUSES, st.one_of(st.none(), st.integers(-50, 500)), _POLL_AFTER),
    st.sampled_from((429, 500, 503, 404)),
    st.tuples(st.sampled_from((429, 503)), st.sampled_from(("0", "3", "600", "-1", "garbage"))),
)
# Two retries per poll, each waiting at most 5 s: the longest the first poll can take.
RETRY = RetryPolicy(max_retries=2, max_delay=4.0, max_retry_after=5.0)
POLL_OVERRUN = RETRY.max_retries * max(RETRY.max_delay, RETRY.max_retry_after)


class ScriptedJob:
    """Answers each poll with the next scripted answer; the last one repeats for ever. An answer
    is (status, progress, poll-after header), an error status, or (error status, retry-after)."""

    def __init__(self, answers: list[Json]) -> None:
        self.answers = answers
        self.polls = 0

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        answer = self.answers[min(self.polls, len(self.answers) - 1)]
        self.polls += 1
        if isinstance(answer, int):
            return httpx2.Response(answer, json={"error": {"message": "scripted"}})
        if isinstance(answer[0], int):
            status_code, retry_after = answer
            return httpx2.Response(
                status_code, json={"error": {"message": "scripted"}}, headers={"retry-after": retry_after}
            )
        status, progress, poll_after = answer
        headers = {"openai-poll-after-ms": poll_after} if poll_after is not None else {}
        body = {"id": "video_1", "object": "video", "status": status, "progress": progress}
        return httpx2.Response(200, json=body, headers=headers)


def _poll(
    answers: list[Json], timeout: float, heartbeat: float, retry: RetryPolicy = RETRY
) -> tuple[float, int, Video | APIError]:
    """Run wait_for_video against the scripted job on a fake clock: (clock seconds it took,
    polls answered, the video it returned or the error it raised)."""
    clock = FakeClock()
    job = ScriptedJob(answers)

    async def main() -> tuple[float, int, Video | APIError]:
        transport = httpx2.MockTransport(job)
        async with httpx2.AsyncClient(transport=transport, base_url="http://backend/v1") as http:
            client = VideosClient(http, clock=clock, retry=retry)
            start = clock.now()
            outcome: Video | APIError
            try:
                outcome = await wait_for_video(
                    client, "video_1", timeout=timeout, clock=clock, heartbeat=heartbeat
                )
            except APIError as exc:
                outcome = exc
            return clock.now() - start, job.polls, outcome

    return anyio.run(main)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(
    answers=st.lists(_ANSWER, min_size=1, max_size=8),
    timeout=st.floats(0, 60),
    heartbeat=st.sampled_from((0.0, 1.0, 5.0)),
)
def test_polling_any_status_sequence_ends_by_its_deadline(
    answers: list[Json], timeout: float, heartbeat: float
) -> None:
    elapsed, polls, outcome = _poll(answers, timeout, heartbeat)

    # Only the first poll's retries may run past the deadline (a wait shorter than them).
    assert elapsed <= max(timeout, POLL_OVERRUN) + 1e-6
    # Never a busy loop: polls are at least 0.1 s apart, each retried at most twice.
    assert polls <= (RETRY.max_retries + 1) * (timeout / 0.1 + 2)
    if isinstance(outcome, Video) and elapsed < timeout - 1e-3:
        assert outcome.is_terminal


def test_a_wait_ends_by_its_deadline_even_while_the_backend_rate_limits() -> None:
    elapsed, _, outcome = _poll(
        [("queued", 0, None), (429, "60")], timeout=10, heartbeat=5, retry=RetryPolicy()
    )

    assert isinstance(outcome, Video) and outcome.status == "queued"
    assert elapsed <= 10


@given(status=st.text(max_size=20))
def test_status_normalisation_is_idempotent_and_keeps_the_contracts_four(status: str) -> None:
    once = OPENAI.normalise_status(status)

    assert OPENAI.normalise_status(once) == once
    if status.strip().lower() in ("queued", "in_progress", "completed", "failed"):
        assert once == status.strip().lower()
