"""Crash and restart: a server killed mid-generation or mid-batch leaves nothing behind that the
next one does not finish — jobs followed and downloaded without a client asking, lost requests
found by listing, and not one billable request sent twice.

The first half drives `Studio` and `Resumer` in memory (fake clock, emulator over ASGI); the
second SIGKILLs real `sora-mcp serve` processes and counts the jobs the emulator holds.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from starlette.applications import Starlette

from helpers import Rig, StalledClock, structured
from procs import StdioServer, child_env, serving, stdio_server, wait_until
from sora_mcp.api.client import VideosClient
from sora_mcp.api.profile import EMULATOR
from sora_mcp.clock import Clock
from sora_mcp.config import Settings
from sora_mcp.emulator.app import create_app
from sora_mcp.emulator.store import EmulatorStore
from sora_mcp.media.video import probe
from sora_mcp.registry.interface import RegistryStore
from sora_mcp.registry.records import VideoRecord, VideoStatus
from sora_mcp.registry.store import Registry
from sora_mcp.server.app import build_server
from sora_mcp.studio.reconcile import STALE_SUBMITTING_SECONDS
from sora_mcp.studio.resume import Resumer
from sora_mcp.studio.studio import ClipPlan, Studio, plan_clip

LOST_NOTE = "The request was sent but its answer was lost; it is never resubmitted."


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(root=tmp_path)


@asynccontextmanager
async def studio_on(rig: Rig, clock: Clock | None = None) -> AsyncIterator[Studio]:
    """A Studio over the rig's counting transport and the test's registry, as a server has."""
    settings = Settings.from_env(backend="emulator")
    clock = clock or rig.clock
    with Registry.open(settings.registry_dir, now=clock.now) as registry:
        async with httpx2.AsyncClient(transport=rig.transport, base_url="http://emulator/v1") as http:
            client = VideosClient(http, profile=EMULATOR, clock=clock)
            yield Studio(settings=settings, client=client, registry=registry, clock=clock)


async def job_on_backend(app: Starlette, prompt: str) -> str:
    """Start a job straight on the emulator: the one a lost request did start."""
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://emu/v1") as http:
        response = await http.post(
            "/videos", json={"prompt": prompt, "model": "sora-2", "size": "720x1280", "seconds": "4"}
        )
    response.raise_for_status()
    video_id: str = response.json()["id"]
    return video_id


def lost_request(registry: RegistryStore, prompt: str, *, status: VideoStatus, at: float) -> VideoRecord:
    """The registry's memory of a request whose answer never came back."""
    return registry.record_intent(
        VideoRecord(
            local_id=uuid.uuid4().hex,
            backend="emulator",
            model="sora-2",
            prompt=prompt,
            size="720x1280",
            seconds=4,
            status=status,
            created_at=at,
            updated_at=at,
            note=LOST_NOTE,
        )
    )


def clip(prompt: str, seconds: int = 4) -> ClipPlan:
    return plan_clip(prompt=prompt, model="sora-2", size="720x1280", seconds=seconds)


def posts(rig: Rig) -> int:
    return rig.transport.count("POST", "/videos")


# ---- in memory: Studio finds lost requests when asked -----------------------------------------


@pytest.mark.anyio
async def test_refreshing_a_lost_request_finds_its_job_by_listing_never_by_sending_again(rig: Rig) -> None:
    job_id = await job_on_backend(rig.app, "a heron lifts off the reeds")
    async with studio_on(rig) as studio:
        lost = lost_request(
            studio.registry, "a heron lifts off the reeds", status="unknown", at=rig.clock.now()
        )
        found = await studio.refresh(lost.local_id)
    assert found.local_id == lost.local_id
    assert found.id == job_id
    assert found.status in ("queued", "in_progress")
    assert posts(rig) == 0


@pytest.mark.anyio
async def test_a_wait_on_a_lost_request_finds_the_job_and_follows_it_to_a_downloaded_file(rig: Rig) -> None:
    job_id = await job_on_backend(rig.app, "lanterns drift over a river")
    async with studio_on(rig) as studio:
        lost = lost_request(
            studio.registry, "lanterns drift over a river", status="unknown", at=rig.clock.now()
        )
        with anyio.fail_after(10):
            (done,) = await studio.wait([lost.local_id], timeout=600)
    assert (done.id, done.status) == (job_id, "completed")
    assert Path(done.files["video"]).is_file()
    assert posts(rig) == 0


@pytest.mark.anyio
async def test_a_wait_on_a_lost_request_with_no_job_returns_at_once_and_still_says_why(rig: Rig) -> None:
    async with studio_on(rig) as studio:
        lost = lost_request(
            studio.registry, "never reached the backend", status="unknown", at=rig.clock.now()
        )
        with anyio.fail_after(10):
            (first,) = await studio.wait([lost.local_id], timeout=600)
            (second,) = await studio.wait([lost.local_id], timeout=600)
    assert rig.clock.slept == []  # nothing to poll without an id: no spinning on the clock
    assert (second.status, second.id) == ("unknown", None)
    assert second.note is not None and second.note.startswith(LOST_NOTE)
    assert second.note == first.note  # the latest check replaces the previous one
    assert posts(rig) == 0


# ---- in memory: the resumer -------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_resumer_follows_a_job_left_running_to_a_downloaded_file_and_sends_nothing(
    rig: Rig,
) -> None:
    async with studio_on(rig) as before_the_crash:
        (started,) = (await before_the_crash.generate(clip("rain on a tin roof"))).records
    assert started.status in ("queued", "in_progress")

    async with studio_on(rig) as studio:
        with anyio.fail_after(10):
            await Resumer(studio).run()
        done = studio.registry.get_video(started.local_id)
    assert done is not None and done.status == "completed"
    assert Path(done.files["video"]).is_file()
    assert posts(rig) == 1


@pytest.mark.anyio
async def test_the_resumer_finds_the_job_of_a_lost_request_and_follows_it_to_a_downloaded_file(
    rig: Rig,
) -> None:
    job_id = await job_on_backend(rig.app, "smoke curls from a chimney")
    async with studio_on(rig) as studio:
        lost = lost_request(
            studio.registry, "smoke curls from a chimney", status="unknown", at=rig.clock.now()
        )
        with anyio.fail_after(10):
            await Resumer(studio).run()
        done = studio.registry.get_video(lost.local_id)
    assert done is not None and (done.id, done.status) == (job_id, "completed")
    assert Path(done.files["video"]).is_file()
    assert posts(rig) == 0


@pytest.mark.anyio
async def test_the_resumer_leaves_queued_batch_items_and_native_items_without_an_id_alone(rig: Rig) -> None:
    async with studio_on(rig) as studio:
        now = rig.clock.now()
        pending = lost_request(studio.registry, "waits in the local queue", status="pending", at=now)
        native = lost_request(studio.registry, "waits for its native batch", status="queued", at=now)
        with anyio.fail_after(10):
            await Resumer(studio).run()
        after = [studio.registry.get_video(r.local_id) for r in (pending, native)]
    assert [r.status for r in after if r is not None] == ["pending", "queued"]
    assert rig.transport.requests == []


@pytest.mark.anyio
async def test_a_recent_submitting_record_is_looked_for_only_once_it_is_stale(rig: Rig) -> None:
    job_id = await job_on_backend(rig.app, "a kettle starts to steam")
    async with studio_on(rig) as studio:
        start = rig.clock.now()
        sending = lost_request(studio.registry, "a kettle starts to steam", status="submitting", at=start)
        with anyio.fail_after(10):
            await Resumer(studio).run()
        found = studio.registry.get_video(sending.local_id)
    # Another process may have been sending it: it is left alone until no request could still be
    # in flight, then matched, followed and downloaded.
    assert rig.clock.slept[0] > STALE_SUBMITTING_SECONDS
    assert found is not None and (found.id, found.status) == (job_id, "completed")
    assert posts(rig) == 0


@pytest.mark.anyio
async def test_stopping_the_resumer_stops_its_polling_but_not_the_job(rig: Rig) -> None:
    async with studio_on(rig) as before:
        (started,) = (await before.generate(clip("tide pools at dusk", seconds=8))).records
    stalled = StalledClock(rig.clock)
    async with studio_on(rig, clock=stalled) as studio:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                group.start_soon(Resumer(studio).run)
                await stalled.sleeping.wait()
                group.cancel_scope.cancel()
        polls = rig.transport.count("GET", f"/videos/{started.id}")
        assert studio.registry.get_video(started.local_id) is not None
    rig.clock.advance(3600)
    async with studio_on(rig) as later:
        done = await later.refresh(started.local_id)
    assert polls >= 1
    assert done.status == "completed"  # the job ran on; a later look picks it up
    assert posts(rig) == 1


@pytest.mark.anyio
async def test_a_server_looks_for_lost_requests_before_it_takes_its_first_call(rig: Rig) -> None:
    job_id = await job_on_backend(rig.app, "a paper boat in the gutter")
    with Registry.open(rig.root / "home" / "registry", now=rig.clock.now) as registry:
        lost = lost_request(registry, "a paper boat in the gutter", status="unknown", at=rig.clock.now())
    async with rig.client() as client:
        listed = structured(await client.call_tool("list_videos", {}))
    (video,) = listed["videos"]
    assert (video["local_id"], video["id"]) == (lost.local_id, job_id)
    assert posts(rig) == 0


class HeldListing(httpx2.AsyncBaseTransport):
    """Holds the backend's video listing (how lost requests are looked for) until released."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.listing = anyio.Event()
        self.release = anyio.Event()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method == "GET" and request.url.path.rstrip("/").endswith("/videos"):
            self.listing.set()
            await self.release.wait()
        return await self.inner.handle_async_request(request)


@pytest.mark.anyio
async def test_a_server_lists_its_tools_while_it_looks_for_lost_requests_and_holds_calls_until_done(
    rig: Rig,
) -> None:
    job_id = await job_on_backend(rig.app, "a lantern drifts down a canal")
    with Registry.open(rig.root / "home" / "registry", now=rig.clock.now) as registry:
        lost = lost_request(registry, "a lantern drifts down a canal", status="unknown", at=rig.clock.now())
    held = HeldListing(rig.transport)
    server = build_server(Settings.from_env(backend="emulator"), clock=rig.clock, transport=held)
    answers: list[dict[str, Any]] = []
    with anyio.fail_after(20):
        async with Client(server) as client:
            await held.listing.wait()  # the resumer is looking, and stays stuck there
            listed = await client.list_tools()

            async def list_videos() -> None:
                answers.append(structured(await client.call_tool("list_videos", {})))

            async with anyio.create_task_group() as group:
                group.start_soon(list_videos)
                await anyio.wait_all_tasks_blocked()
                assert answers == []  # a tool call waits for the look
                held.release.set()
    assert "list_videos" in {tool.name for tool in listed.tools}
    (video,) = answers[0]["videos"]
    assert (video["local_id"], video["id"]) == (lost.local_id, job_id)
    assert posts(rig) == 0


# ---- real processes, killed with SIGKILL -------------------------------------------------------

SPEED = 8.0  # a 4 s sora-2 clip renders in 4 s: still running when the server is killed


def registry_videos(env: dict[str, str]) -> list[VideoRecord]:
    """What the registry holds right now (read beside the running server, as a second process)."""
    with Registry.open(Path(env["SORA_MCP_HOME"]) / "registry") as registry:
        return registry.list_videos(limit=1000)


def emulator_jobs(env: dict[str, str]) -> list[str]:
    """The prompts of every job the embedded emulator has ever accepted (its files on disk)."""
    return [job.prompt for job in EmulatorStore(Path(env["SORA_MCP_HOME"]) / "emulator").list_videos()]


def downloaded(record: VideoRecord) -> bool:
    return record.status == "completed" and Path(record.files.get("video", "/nonexistent")).is_file()


def sigkill(server: StdioServer) -> None:
    server.kill()
    assert server.proc.returncode == -signal.SIGKILL


def test_a_generation_killed_mid_render_is_finished_and_downloaded_by_the_next_server(tmp_path: Path) -> None:
    env = child_env(tmp_path, speed=SPEED)
    prompt = "a lighthouse beam sweeps the fog"
    with stdio_server(env, tmp_path / "first.log") as first:
        started = first.call(
            "generate", {"prompt": prompt, "model": "sora-2", "size": "720x1280", "seconds": 4}
        )
        video_id = started["videos"][0]["id"]
        sigkill(first)
    (left,) = registry_videos(env)
    assert (left.id, left.files) == (video_id, {})
    assert left.status in ("queued", "in_progress")

    with stdio_server(env, tmp_path / "second.log"):
        # No tool call: the new server follows the job and downloads it on its own.
        wait_until(lambda: all(downloaded(r) for r in registry_videos(env)), 30, "the download")
    (done,) = registry_videos(env)
    assert done.id == video_id
    assert probe(Path(done.files["video"])).seconds == pytest.approx(4, abs=0.5)
    assert emulator_jobs(env) == [prompt]


BATCH: list[dict[str, Any]] = [
    {
        "custom_id": f"shot-{n}",
        "prompt": f"shot {n}: {scene}",
        "model": "sora-2",
        "size": "720x1280",
        "seconds": 4,
    }
    for n, scene in enumerate(
        [
            "dawn over dunes",
            "a fox crosses snow",
            "rain on neon",
            "a kite at noon",
            "waves at dusk",
            "stars turn",
        ]
    )
]
# The backend runs in a process of its own here, so a create really waits on the network: the
# queue's three senders are all mid-request when the first create is refused for rate limits
# with a long Retry-After. The queue then pauses with two or more items sent and the refused one
# (at least) pending — the moment the server is killed. The backend renders on meanwhile.
# Long enough to hold the first server's queue until it is killed; the pause is recorded in the
# registry, so the second server honours what is left of it before sending.
PAUSE_AFTER_FIRST_CREATE = "429x1:retry=15:methods=POST:path=/videos"


def paused_midway(env: dict[str, str]) -> dict[str, VideoRecord] | None:
    """The batch's items once its queue has paused after the 429 with none in flight; None while
    it is still moving."""
    items = {r.custom_id or "": r for r in registry_videos(env)}
    pending = [r for r in items.values() if r.status == "pending"]
    refused_once = any(r.updated_at > r.created_at for r in pending)
    in_flight = any(r.status == "submitting" for r in items.values())
    return items if len(items) == len(BATCH) and refused_once and not in_flight else None


def test_a_direct_batch_killed_midway_is_resumed_with_no_duplicate_and_nothing_lost(tmp_path: Path) -> None:
    backend_env = child_env(
        tmp_path / "backend", speed=SPEED, SORA_MCP_EMULATOR_FAULTS=PAUSE_AFTER_FIRST_CREATE
    )
    with serving(["emulator"], backend_env) as port:
        env = child_env(
            tmp_path,
            SORA_MCP_BACKEND="remote",
            OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1",
            SORA_MCP_TIMEOUT="20",
            # A remote backend asks before spending over $1; this batch is what the user wants.
            SORA_MCP_CONFIRM_ABOVE_USD="off",
        )
        with stdio_server(env, tmp_path / "first.log") as first:
            batch_id = first.call("batch", {"requests": BATCH, "mode": "direct"})["batch_id"]
            # Two identical readings a moment apart: the queue really is paused.
            readings: list[dict[str, VideoRecord] | None] = [None]

            def settled() -> bool:
                readings.append(paused_midway(env))
                return readings[-1] is not None and readings[-1] == readings[-2]

            wait_until(settled, 20, "the queue to pause midway")
            sigkill(first)
        at_kill = readings[-1]
        assert at_kill is not None
        sent = {cid for cid, r in at_kill.items() if r.id is not None}
        assert sent and len(sent) < len(BATCH)

        with stdio_server(env, tmp_path / "second.log") as second:
            # Without a call: the sent items are followed and downloaded, the pending ones sent.
            def resumed() -> bool:
                items = {r.custom_id: r for r in registry_videos(env)}
                return all(downloaded(items[cid]) for cid in sent) and all(r.id for r in items.values())

            wait_until(resumed, 60, "the resumed batch")
            final = second.call("get_batch", {"batch_id": batch_id, "wait_seconds": 60}, timeout=90)
    assert final["still_running"] is False
    assert {cid: item["status"] for cid, item in final["items"].items()} == {
        r["custom_id"]: "completed" for r in BATCH
    }
    assert all(Path(item["files"]["video"]).is_file() for item in final["items"].values())
    # One job per clip: nothing sent twice, nothing lost; every job belongs to its item.
    assert sorted(emulator_jobs(backend_env)) == sorted(r["prompt"] for r in BATCH)
    ids = [item["video_id"] for item in final["items"].values()]
    assert len(set(ids)) == len(BATCH)
    assert {r.id for r in registry_videos(env)} == set(ids)


def test_a_stale_submitting_record_is_matched_to_its_job_at_start_and_never_resent(tmp_path: Path) -> None:
    env = child_env(tmp_path, speed=SPEED)
    home = Path(env["SORA_MCP_HOME"])
    prompt = "a train crosses a viaduct at night"
    # As if a server had died between sending the create and recording its answer, long ago:
    # the job exists on the backend, the registry only knows the intent.
    job_id = anyio.run(job_on_backend, create_app(root=home / "emulator", speed=SPEED), prompt)
    sent_at = time.time() - STALE_SUBMITTING_SECONDS - 60
    with Registry.open(home / "registry") as registry:
        intent = lost_request(registry, prompt, status="submitting", at=sent_at)

    with stdio_server(env, tmp_path / "server.log"):
        wait_until(lambda: all(downloaded(r) for r in registry_videos(env)), 30, "the matched job's download")
    (done,) = registry_videos(env)
    assert (done.local_id, done.id) == (intent.local_id, job_id)
    assert emulator_jobs(env) == [prompt]
