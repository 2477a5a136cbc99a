"""A client waiting on one replica for its job, while another replica sweeps the registry for
work nobody follows: the wait holds the job's claim — and keeps it a while after, for the
client's next wait — so the sweeping replica leaves it alone: no second poller, no second
download. Real `sora-mcp serve --transport http` processes on one
PostgreSQL registry, each reaching the emulator through its own lane of one counting relay."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

from fleet_relay import Counts, relay
from helpers import structured
from test_fleet import CLIP, _call, _emulator, _replicas

pytestmark = pytest.mark.anyio


@contextmanager
def _two_replicas(tmp_path: Path, postgres_url: str) -> Iterator[tuple[str, Counts]]:
    """A replica for the client (lease 60 s) and one sweeping every second, each on its own lane
    of one relay to an emulator where a 4 s clip renders in 16 s; yields the first's URL."""
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
    with (
        _emulator(tmp_path, speed=2) as backend,
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


async def test_a_job_a_client_waits_for_on_one_replica_is_not_followed_by_another_as_well(
    tmp_path: Path, postgres_url: str
) -> None:
    with _two_replicas(tmp_path, postgres_url) as (url, counts), anyio.fail_after(120):
        (video,) = structured(await _call(url, "generate", {**CLIP, "wait_seconds": 45}))["videos"]

    assert video["status"] == "completed" and video["downloaded"]
    assert len(_gets(counts, "a", video["id"])) > 1  # the wait polled it and fetched its files
    assert _gets(counts, "b", video["id"]) == []  # the sweeping replica never touched it
    assert _mp4_gets(_gets(counts, "a", video["id"])) == 1


async def test_between_a_clients_waits_the_job_is_still_left_to_it(tmp_path: Path, postgres_url: str) -> None:
    with _two_replicas(tmp_path, postgres_url) as (url, counts), anyio.fail_after(120):
        (started,) = structured(await _call(url, "generate", {**CLIP, "wait_seconds": 3}))["videos"]
        await anyio.sleep(3)  # the assistant thinking between two calls: three sweeps go by
        followed = structured(await _call(url, "get_video", {"video_id": started["id"], "wait_seconds": 45}))

    assert started["status"] in ("queued", "in_progress")
    assert followed["video"]["status"] == "completed" and followed["video"]["downloaded"]
    assert _gets(counts, "b", started["id"]) == []
    assert _mp4_gets(_gets(counts, "a", started["id"])) == 1
