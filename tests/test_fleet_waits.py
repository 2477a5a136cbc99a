"""A client waiting on one replica for its job, while another replica sweeps the registry for
work nobody follows: the wait holds the job's claim, so the sweeping replica leaves it alone — no
second poller, no second download. Real `sora-mcp serve --transport http` processes on one
PostgreSQL registry, each reaching the emulator through its own lane of one counting relay."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from fleet_relay import relay
from helpers import structured
from test_fleet import CLIP, _call, _emulator, _replicas

pytestmark = pytest.mark.anyio


async def test_a_job_a_client_waits_for_on_one_replica_is_not_followed_by_another_as_well(
    tmp_path: Path, postgres_url: str
) -> None:
    # At speed 2 a 4 s clip renders in 16 s; the other replica sweeps every second all along,
    # the waiting one not before 60 s (its lease).
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
        ) as (_sweeping,),
        anyio.fail_after(120),
    ):
        answer = structured(await _call(waiting.url, "generate", {**CLIP, "wait_seconds": 45}))
    (video,) = answer["videos"]

    def requests_for(lane: str) -> list[str]:
        return [
            path
            for (method, path), n in counts.requests.items()
            for _ in range(n)
            if method == "GET" and path.startswith(f"/lane-{lane}/") and video["id"] in path
        ]

    assert video["status"] == "completed" and video["downloaded"]
    assert len(requests_for("a")) > 1  # the wait polled it and fetched its files
    assert requests_for("b") == []  # the sweeping replica never touched it
    assert sum("variant=video" in path or path.endswith("/content") for path in requests_for("a")) == 1
