"""Poll a video job until it ends or a deadline passes, keeping the caller's client awake.

An MCP client drops a tool call that stays silent too long, and a render can take minutes while
the server asks us to poll only every 20 s. So the waits between polls are cut into pieces of at
most `heartbeat` seconds, and the progress callback runs after every piece.

Every status request is a request the backend must answer, so the loop asks few of them: the
answer that started the wait (a create answer, a refresh) counts as its first poll, and once the
progress moves, the wait before the next poll aims just past the finish estimated from the
progress rate, polling at the server's hint (or the client's interval) only near the end.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sora_mcp.api.client import VideosClient
from sora_mcp.api.models import Video
from sora_mcp.clock import Clock
from sora_mcp.errors import APIConnectionError, RateLimitError, ServerError

ProgressCallback = Callable[[Video, float], Awaitable[None]]
"""Called with (latest video seen, seconds elapsed since the wait began)."""

_GROWTH = 1.5
# A server hint of 0 ms must not turn the loop into a busy poll against a remote backend.
_MIN_SERVER_INTERVAL = 0.1
# Float time at epoch scale is coarse (~1e-7 s); leftovers smaller than this are not worth a wait.
_EPSILON = 1e-3
# Aim this far past the estimated finish, so the poll that lands there usually sees `completed`.
_PAST_FINISH = 0.05
# Within this many poll intervals of the estimated finish, the next poll aims just past it;
# farther away, a wait covers this share of the estimated remainder.
_NEAR_FINISH = 2.0
_FAR_SHARE = 0.8
# Before the progress moves, a wait covers this share of the expected render left.
_UNSTARTED_SHARE = 0.25
_UNSTARTED_PACES = 4.0


# Over 60 lines with its docstring: the one poll loop, kept whole so its deadline logic reads in one place.
async def wait_for_video(
    client: VideosClient,
    video_id: str,
    *,
    timeout: float,
    clock: Clock,
    on_progress: ProgressCallback | None = None,
    heartbeat: float = 5.0,
    min_interval: float = 1.0,
    max_interval: float = 20.0,
    first: Video | None = None,
    first_hint: float | None = None,
    expected_end: float | None = None,
) -> Video:
    """Poll `video_id` until its status is terminal or `timeout` seconds have passed, and return
    the last Video seen either way: a deadline is not an error (the caller reports "still
    running"), and neither is `failed` (the caller reads `video.error`).

    `first` is an answer about this job just received (it then stands for the first poll) and
    `first_hint` the poll-after hint that came with it; `expected_end` (clock time) is when the
    job is expected to finish (the catalogue's estimate), used until its progress starts moving.
    Between polls it waits the server's `openai-poll-after-ms` when given, else `min_interval`
    growing by half up to `max_interval` — except once the progress rate is known, when it sleeps
    toward the estimated finish (at most `max_interval`) and then polls at that pace only near
    the end. It never sleeps past the deadline, and polls once more at the deadline. `on_progress` runs after every poll and after every heartbeat piece of a wait,
    so it runs at least every `heartbeat` seconds.

    Transient failures of a poll (connection trouble, 429, 5xx — already retried by the client,
    though after the first poll never past the deadline) do not end the wait once a first answer arrived: the last seen video is reported and the
    next poll is tried later (after the server's `retry_after` when it gave one).

    Raises:
        APIError: the first poll failed, or a later one failed for good (e.g. 404, 401).
    """
    start = clock.now()
    deadline = start + timeout
    interval = min_interval

    if first is not None:
        video, hint = first, first_hint
    else:
        video, hint = await client.retrieve_video_with_hint(video_id)
    rate = _ProgressRate(expected_end)
    rate.see(clock.now(), video)
    await _report(on_progress, video, clock.now() - start)
    while not video.is_terminal and deadline - clock.now() > _EPSILON:
        pace = max(hint, _MIN_SERVER_INTERVAL) if hint is not None else interval
        wait = rate.next_wait(clock.now(), video, pace=pace, longest=max_interval)
        await _wait(clock, min(wait, deadline - clock.now()), heartbeat, on_progress, video, start)
        interval = min(interval * _GROWTH, max_interval)
        try:
            # Retries of this poll must not outlast the wait: past the deadline it is reported
            # as it was last seen, like any other transient failure.
            video, hint = await client.retrieve_video_with_hint(video_id, deadline=deadline)
        except (RateLimitError, ServerError) as exc:
            hint = exc.retry_after
        except APIConnectionError:
            hint = None
        rate.see(clock.now(), video)
        await _report(on_progress, video, clock.now() - start)
    return video


class _ProgressRate:
    """The job's progress per second, from the first and the latest answers that showed some
    progress (answers at 0 % are left out: a queued job has not started to move)."""

    def __init__(self, expected_end: float | None) -> None:
        self._expected_end = expected_end
        self._first: tuple[float, int] | None = None
        self._latest: tuple[float, int] | None = None

    def see(self, now: float, video: Video) -> None:
        progress = video.progress or 0
        if progress <= 0 or video.is_terminal:
            return
        if self._first is None:
            self._first = (now, progress)
        self._latest = (now, progress)

    def next_wait(self, now: float, video: Video, *, pace: float, longest: float) -> float:
        """Seconds to sleep before the next poll: most of the way toward the estimated finish
        while it is far, just past it once it is near, and `pace` (the server's hint or the
        client's interval) while there is no estimate or the estimate has passed."""
        if self._first is None or self._latest is None or self._latest[1] <= self._first[1]:
            ahead = self._expected_end - now if self._expected_end is not None else 0.0
            # Not moving yet: a share of the expected render, never faster than the usual pace.
            # The catalogue's estimate can be far off for a given backend, so it stretches the
            # pace at most a few times over.
            return max(pace, min(ahead * _UNSTARTED_SHARE, _UNSTARTED_PACES * pace, longest))
        (t0, p0), (t1, p1) = self._first, self._latest
        per_second = (p1 - p0) / max(t1 - t0, _EPSILON)
        remaining = (100 - p1) / per_second - (now - t1)
        if remaining <= 0:
            return pace  # the estimate was wrong (a job may sit at 99 %): back to the usual pace
        if remaining > _NEAR_FINISH * pace:
            # Far from the end: skip the polls that could only say "still running", but stop
            # short, so the estimate is made again from a longer stretch of progress.
            return min(remaining * _FAR_SHARE, longest)
        return max(remaining + _PAST_FINISH, _MIN_SERVER_INTERVAL)


async def _wait(
    clock: Clock,
    seconds: float,
    heartbeat: float,
    on_progress: ProgressCallback | None,
    video: Video,
    start: float,
) -> None:
    """Sleep `seconds` in pieces of at most `heartbeat`, reporting after each piece but the last
    (the poll that follows the last piece reports fresher news)."""
    remaining = seconds
    piece = heartbeat if heartbeat > 0 else seconds
    while remaining > _EPSILON:
        step = min(piece, remaining)
        await clock.sleep(step)
        remaining -= step
        if remaining > _EPSILON:
            await _report(on_progress, video, clock.now() - start)


async def _report(on_progress: ProgressCallback | None, video: Video, elapsed: float) -> None:
    if on_progress is not None:
        await on_progress(video, elapsed)
