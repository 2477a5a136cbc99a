"""Poll a video job until it ends or a deadline passes, keeping the caller's client awake.

An MCP client drops a tool call that stays silent too long, and a render can take minutes while
the server asks us to poll only every 20 s. So the waits between polls are cut into pieces of at
most `heartbeat` seconds, and the progress callback runs after every piece.
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
) -> Video:
    """Poll `video_id` until its status is terminal or `timeout` seconds have passed, and return
    the last Video seen either way: a deadline is not an error (the caller reports "still
    running"), and neither is `failed` (the caller reads `video.error`).

    Between polls it waits the server's `openai-poll-after-ms` when given, else `min_interval`
    growing by half up to `max_interval`; it never sleeps past the deadline, and polls once more at
    the deadline. `on_progress` runs after every poll and after every heartbeat piece of a wait,
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

    video, hint = await client.retrieve_video_with_hint(video_id)
    await _report(on_progress, video, clock.now() - start)
    while not video.is_terminal and deadline - clock.now() > _EPSILON:
        wait = max(hint, _MIN_SERVER_INTERVAL) if hint is not None else interval
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
        await _report(on_progress, video, clock.now() - start)
    return video


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
