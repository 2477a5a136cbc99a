"""A client waiting on one replica for its job, while another replica sweeps the registry for
work nobody follows: the wait holds the job's claim — and keeps it a while after, for the
client's next wait — so the sweeping replica leaves it alone: no second poller, no second
download. Real `sora-mcp serve --transport http` processes on one
PostgreSQL registry, each reaching the emulator through its own lane of one counting relay."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from fleet_relay import Counts, relay
from helpers import structured
from test_fleet import CLIP, _call, _emulator, _replicas

pytestmark = pytest.mark.anyio


@contextmanager
def _two_replicas(tmp_path: Path, postgres_url: str) -> Iterator[tuple[str, Counts]]:
    """A replica for the client (lease 60 s) and one sweeping every second, each on its own lane
    of one relay to an emulator where a 4 s clip renders in 8 s; yields the first's URL."""
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
    with (
        _emulator(tmp_path, speed=4) as backend,
        relay(backend) as (relayed, counts),
        _replicas(
            tmp_path / "a",
            postgres_url,
            1,
            relayed.replace("/v1", "/lane-a/v1"),
            SORA_MCP_BATCH_LEASE_SECONDS="60",
        ) as (waiting,),
        _replicas(
            tmp_path / "b",
            postgres_url,
            1,
            relayed.replace("/v1", "/lane-b/v1"),
            SORA_MCP_BATCH_LEASE_SECONDS="1",
        ),
    ):
        yield waiting.url, counts


def _gets(counts: Counts, lane: str, video_id: str) -> list[str]:
    return [
        path
        for (method, path), n in counts.requests.items()
        for _ in range(n)
        if method == "GET" and path.startswith(f"/lane-{lane}/") and video_id in path
    ]


def _mp4_gets(paths: list[str]) -> int:
    return sum(("/content" in path and "variant=" not in path) or "variant=video" in path for path in paths)


async def test_jobs_a_client_follows_on_one_replica_are_left_to_it_by_another_that_sweeps(
    tmp_path: Path, postgres_url: str
) -> None:
    answers: dict[str, Any] = {}

    async def in_one_wait(url: str) -> None:
        (answers["one"],) = structured(await _call(url, "generate", {**CLIP, "wait_seconds": 45}))["videos"]

    async def in_two_waits(url: str) -> None:
        second = {**CLIP, "prompt": "a second paper boat", "wait_seconds": 2}
        (answers["started"],) = structured(await _call(url, "generate", second))["videos"]
        await anyio.sleep(2)  # the assistant thinking between two calls: two sweeps go by
        followed = {"video_id": answers["started"]["id"], "wait_seconds": 45}
        answers["two"] = structured(await _call(url, "get_video", followed))["video"]

    with _two_replicas(tmp_path, postgres_url) as (url, counts), anyio.fail_after(120):
        async with anyio.create_task_group() as group:
            group.start_soon(in_one_wait, url)
            group.start_soon(in_two_waits, url)

    assert answers["started"]["status"] in ("queued", "in_progress")
    for video in (answers["one"], answers["two"]):
        assert video["status"] == "completed" and video["downloaded"]
        assert len(_gets(counts, "a", video["id"])) > 1  # the waits polled it and fetched its files
        assert _gets(counts, "b", video["id"]) == []  # the sweeping replica never touched it
        assert _mp4_gets(_gets(counts, "a", video["id"])) == 1
