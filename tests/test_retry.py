"""RetryPolicy backoff, Retry-After parsing, and how the client retries reads with them.

The scripted fake backend lives in test_api_client.py."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sora_mcp.api.retry import RetryPolicy, parse_retry_after
from sora_mcp.clock import FakeClock
from sora_mcp.errors import APIStatusError, APITimeoutError, RateLimitError, ServerError
from test_api_client import Backend, client_for, fail, ok, raises, video

NOW = 1_780_000_000.0


def _http_date(epoch: float) -> str:
    return format_datetime(datetime.fromtimestamp(epoch, tz=UTC), usegmt=True)


def test_backoff_without_jitter_doubles_from_the_initial_delay_up_to_the_cap() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=8.0, jitter=0.0)
    rng = random.Random(1)

    delays = [policy.backoff(attempt, rng) for attempt in range(7)]

    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


@given(attempt=st.integers(min_value=0, max_value=200), seed=st.integers(), jitter=st.floats(0.0, 1.0))
def test_backoff_with_jitter_stays_between_the_shortened_and_the_capped_delay(
    attempt: int, seed: int, jitter: float
) -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=8.0, jitter=jitter)
    capped = min(8.0, 0.5 * 2.0**attempt)

    delay = policy.backoff(attempt, random.Random(seed))

    assert capped * (1.0 - jitter) <= delay <= capped


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "12.5"}, 0.0125),
        ({"retry-after": "7"}, 7.0),
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"retry-after": _http_date(NOW + 30)}, 30.0),
        ({"retry-after": _http_date(NOW - 30)}, 0.0),
        ({"retry-after": "86400000"}, 86_400_000.0),
        ({"retry-after-ms": "3600000000"}, 3_600_000.0),
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after-ms": "-100"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": ""}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after-ms": "inf"}, None),
        ({"retry-after-ms": "later", "retry-after": "3"}, 3.0),
        ({"retry-after-ms": "250", "retry-after": "3"}, 0.25),
        ({}, None),
        ({"content-type": "application/json"}, None),
    ],
)
def test_retry_after_reads_milliseconds_first_then_seconds_or_an_http_date(
    headers: dict[str, str], expected: float | None
) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


def test_retry_after_reads_httpx_headers_case_insensitively() -> None:
    headers = httpx2.Headers({"Retry-After-Ms": "400", "Retry-After": "9"})

    assert parse_retry_after(headers, now=NOW) == 0.4


def test_retry_after_reads_a_zoneless_http_date_as_gmt() -> None:
    date = _http_date(NOW + 12).replace("GMT", "-0000")

    assert parse_retry_after({"retry-after": date}, now=NOW) == 12.0


# --- the client's reads retry; see test_api_client.py for POSTs, which never do -------------------


@pytest.mark.anyio
async def test_a_read_that_fails_twice_with_503_then_succeeds_returns_after_two_backoffs() -> None:
    backend = Backend(fail(503), fail(503), ok(video("v", "in_progress")))
    clock = FakeClock()
    policy = RetryPolicy(initial_delay=0.5, jitter=0.25)
    async with client_for(backend, clock=clock, retry=policy) as client:
        result = await client.retrieve_video("v")

    assert result.status == "in_progress"
    assert len(backend.requests) == 3
    assert len(clock.slept) == 2
    assert 0.375 <= clock.slept[0] <= 0.5
    assert 0.75 <= clock.slept[1] <= 1.0


@pytest.mark.parametrize(
    "exc_type", [httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.ReadTimeout, httpx2.RemoteProtocolError]
)
@pytest.mark.anyio
async def test_a_read_retries_connection_failures_and_timeouts(exc_type: type[httpx2.RequestError]) -> None:
    backend = Backend(raises(exc_type), ok())
    async with client_for(backend) as client:
        await client.retrieve_video("video_1")

    assert backend.count("GET") == 2


@pytest.mark.anyio
async def test_a_read_gives_up_after_max_retries_with_the_last_error() -> None:
    backend = Backend(*[fail(502)] * 3)
    clock = FakeClock()
    async with client_for(backend, clock=clock, retry=RetryPolicy(max_retries=2)) as client:
        with pytest.raises(ServerError) as caught:
            await client.retrieve_video("video_1")

    assert caught.value.status_code == 502
    assert len(backend.requests) == 3
    assert len(clock.slept) == 2


@pytest.mark.anyio
async def test_a_timed_out_read_gives_up_as_a_timeout_error() -> None:
    backend = Backend(*[raises(httpx2.ReadTimeout)] * 2)
    async with client_for(backend, retry=RetryPolicy(max_retries=1)) as client:
        with pytest.raises(APITimeoutError):
            await client.retrieve_video("video_1")


@pytest.mark.anyio
async def test_a_read_waits_exactly_what_retry_after_asks_within_the_cap() -> None:
    backend = Backend(
        fail(429, headers={"retry-after": "2"}), fail(503, headers={"retry-after-ms": "1500"}), ok()
    )
    clock = FakeClock()
    async with client_for(backend, clock=clock) as client:
        await client.retrieve_video("video_1")

    assert clock.slept == [2.0, 1.5]


@pytest.mark.anyio
async def test_a_read_told_to_wait_past_the_cap_reports_at_once_instead_of_waiting() -> None:
    backend = Backend(fail(429, headers={"retry-after": "3600"}))
    clock = FakeClock()
    async with client_for(backend, clock=clock, retry=RetryPolicy(max_retry_after=60.0)) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.retrieve_video("video_1")

    assert caught.value.retry_after == 3600.0
    assert len(backend.requests) == 1
    assert clock.slept == []


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
@pytest.mark.anyio
async def test_a_read_answered_with_a_client_error_is_not_retried(status: int) -> None:
    backend = Backend(fail(status))
    async with client_for(backend) as client:
        with pytest.raises(APIStatusError):
            await client.retrieve_video("video_1")

    assert len(backend.requests) == 1


@pytest.mark.anyio
async def test_delete_is_idempotent_so_it_is_retried_like_a_read() -> None:
    backend = Backend(fail(503), ok({"id": "v", "object": "video.deleted", "deleted": True}))
    async with client_for(backend) as client:
        deleted = await client.delete_video("v")

    assert deleted.deleted
    assert backend.count("DELETE") == 2
