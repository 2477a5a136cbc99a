"""A replica that dies while following a job, and the replica still running that takes it over —
not at its next start but while it serves: real `sora-mcp serve --transport http` processes on
one PostgreSQL registry, the standalone emulator behind a counting relay."""

from __future__ import annotations

from pathlib import Path

import anyio
import psycopg
import pytest

from fleet_relay import relay
from helpers import structured
from procs import wait_until
from sora_mcp.media.video import probe
from sora_mcp.registry.postgres import PostgresRegistry
from test_fleet import CLIP, Replica, _all_downloaded, _call, _emulator, _replicas

pytestmark = pytest.mark.anyio


def _claim_owner(postgres_url: str, work: str) -> str | None:
    """Who holds the claim on `work` ("host:pid:…"), if anyone has taken it."""
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute("SELECT owner FROM work_claims WHERE key = %s", (work,)).fetchone()
    return None if row is None else str(row[0])


def _held_by(postgres_url: str, work: str, replicas: list[Replica]) -> Replica:
    """The replica whose resumer took `work` (waits until one has)."""
    wait_until(lambda: _claim_owner(postgres_url, work) is not None, 60, f"a replica to claim {work}")
    pid = int(str(_claim_owner(postgres_url, work)).split(":")[1])
    return next(r for r in replicas if r.proc.pid == pid)


async def test_a_job_a_killed_replica_was_following_is_downloaded_by_a_replica_still_running(
    tmp_path: Path, postgres_url: str
) -> None:
    lease = {"SORA_MCP_BATCH_LEASE_SECONDS": "2"}  # claims lapse, and replicas sweep, every 2 s
    # At speed 4 a 4 s clip renders in 8 s: the follower is killed (within a sweep, 2 s) before it completes.
    with (
        _emulator(tmp_path, speed=4) as backend,
        relay(backend) as (relayed, counts),
        _replicas(tmp_path, postgres_url, 2, relayed, **lease) as replicas,
        anyio.fail_after(180),
    ):
        (video,) = structured(await _call(replicas[0].url, "generate", CLIP))["videos"]
        follower = _held_by(postgres_url, f"follow:{video['local_id']}", replicas)
        content = f"/videos/{video['id']}/content"
        fetched_before_kill = sum(n for (m, path), n in counts.requests.items() if content in path)
        follower.proc.kill()  # SIGKILL: its claim is no longer renewed
        follower.proc.wait(timeout=10)
        survivor = next(r for r in replicas if r is not follower)
        downloaded = [video["local_id"]]
        wait_until(lambda: _all_downloaded(postgres_url, downloaded), 120, "the survivor to download it")
        survivor_alive = survivor.proc.poll() is None
    with PostgresRegistry.open(postgres_url) as registry:
        record = registry.get_video(video["local_id"])

    assert fetched_before_kill == 0  # the job had not completed when its follower died
    assert survivor_alive  # taken over by the replica as it ran, never restarted
    home = tmp_path / f"host{replicas.index(survivor)}"
    assert record is not None and Path(record.files["video"]).is_relative_to(home)
    assert probe(Path(record.files["video"])).seconds == pytest.approx(4, abs=0.5)  # a whole MP4
    mp4_gets = sum(
        n
        for (m, path), n in counts.requests.items()
        if m == "GET" and content in path and "variant=video" in path
    )
    assert mp4_gets == 1  # one content GET for its MP4, fleet-wide
    assert counts.creates == 1  # the generate itself: nothing sent again
