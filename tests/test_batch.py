"""Batches through the MCP client: both modes against the emulator, JSONL input, validation
before any request, rate limits in direct mode, and batches that outlive their server."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client

from helpers import Rig, StalledClock, data_url, error_code, error_text, png_bytes, structured
from sora_mcp import catalog
from sora_mcp.api.profile import ALL_CAPABILITIES, BackendProfile
from sora_mcp.config import Settings
from sora_mcp.media.video import frame_at, probe
from sora_mcp.registry.store import Registry
from sora_mcp.server.app import build_server

pytestmark = pytest.mark.anyio

FIVE: list[dict[str, Any]] = [
    {"custom_id": "dunes", "prompt": "a red kite over green dunes", "size": "1280x720"},
    {"custom_id": "harbour", "prompt": "fog rolling into a harbour at dawn", "seconds": 8},
    {"custom_id": "blocked", "prompt": "a crowd scene [fail:moderation_blocked]"},
    {"custom_id": "neon", "prompt": "neon rain on a quiet street", "model": "sora-2-pro"},
    {"custom_id": "tide", "prompt": "slow tide over black sand"},
]
FIVE_COST = round(0.4 + 0.8 + 0.4 + 1.2 + 0.4, 2)
THREE: list[dict[str, Any]] = [
    {"custom_id": "kite", "prompt": "a red kite"},
    {"custom_id": "owl", "prompt": "an owl blinks"},
    {"custom_id": "blocked", "prompt": "a crowd [fail:moderation_blocked]"},
]


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(root=tmp_path)


@asynccontextmanager
async def serve(
    rig: Rig,
    *,
    clock: Any = None,
    transport: httpx2.AsyncBaseTransport | None = None,
    **options: Any,
) -> AsyncIterator[Client]:
    """Like `rig.client()`, with the server's clock, transport and batch options replaceable."""
    server = build_server(
        Settings.from_env(backend="emulator"),
        clock=clock or rig.clock,
        transport=transport or rig.transport,
        **options,
    )
    async with Client(server) as client:
        yield client


async def jobs_on_emulator(rig: Rig) -> list[dict[str, Any]]:
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=rig.app), base_url="http://emulator/v1"
    ) as http:
        listed = (await http.get("/videos", params={"limit": 100})).json()
    data: list[dict[str, Any]] = listed["data"]
    return data


def assert_done_but_blocked(batch: dict[str, Any], requests: list[dict[str, Any]]) -> None:
    """Every item completed and downloaded, except "blocked", failed with its code."""
    items = dict(batch["items"])
    assert list(items) == [r["custom_id"] for r in requests]
    assert batch["totals"] == {"completed": len(requests) - 1, "failed": 1}
    assert batch["still_running"] is False
    blocked = items.pop("blocked")
    assert blocked["status"] == "failed"
    assert blocked["error"]["code"] == "moderation_blocked"
    assert blocked["files"] == {}
    for custom_id, item in items.items():
        assert item["status"] == "completed", custom_id
        assert item["video_id"]
        info = probe(Path(item["files"]["video"]))
        assert info.seconds == pytest.approx(item["seconds"], abs=0.01)
        assert (info.width, info.height) == tuple(int(n) for n in item["size"].split("x"))
        assert Path(item["files"]["thumbnail"]).is_file()
    assert batch["cost_so_far_usd"] == pytest.approx(sum(i["estimated_cost_usd"] for i in items.values()))


@pytest.mark.parametrize("mode", ["direct", "native"])
async def test_a_batch_of_five_completes_four_downloads_them_and_reports_the_failure(
    rig: Rig, mode: str
) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with rig.client() as client:
        started = structured(await client.call_tool("batch", {"requests": FIVE, "mode": mode}))
        assert (started["mode"], started["count"], started["dry_run"]) == (mode, 5, False)
        assert started["estimated_total_usd"] == pytest.approx(FIVE_COST)
        assert [item["custom_id"] for item in started["items"]] == [r["custom_id"] for r in FIVE]
        assert "not guaranteed" in started["price_note"]
        batch_id = started["batch_id"]
        done = structured(
            await client.call_tool(
                "get_batch", {"batch_id": batch_id, "wait_seconds": 1800}, progress_callback=on_progress
            )
        )
    assert_done_but_blocked(done, FIVE)
    assert done["cost_so_far_usd"] == pytest.approx(FIVE_COST - 0.4)
    assert seen and seen[-1] == 100
    assert all(b >= a for a, b in itertools.pairwise(seen))
    if mode == "direct":
        assert rig.transport.count("POST", "/videos") == 5
        assert done["status"] == "completed"
    else:
        assert rig.transport.count("POST", "/videos") == 0
        assert rig.transport.count("POST", "/batches") == 1
        assert done["status"] == "completed" and done["backend_batch_id"]
    assert len(await jobs_on_emulator(rig)) == 5

    # A new server on the same registry knows the batch, its final state and files, and sends nothing.
    posts = rig.transport.count("POST")
    async with rig.client() as client:
        again = structured(await client.call_tool("get_batch", {"batch_id": batch_id}))
        listed = structured(await client.call_tool("list_videos", {}))
    assert_done_but_blocked(again, FIVE)
    assert {v["id"] for v in listed["videos"]} >= {
        i["video_id"] for i in again["items"].values() if i["video_id"]
    }
    assert rig.transport.count("POST") == posts


async def test_a_jsonl_file_in_the_seed_format_is_sent_as_the_batch(rig: Rig, tmp_path: Path) -> None:
    lines = [
        {
            "custom_id": "a",
            "method": "POST",
            "url": "/v1/videos",
            "body": {"prompt": "a lighthouse", "seconds": 4},
        },
        {
            "custom_id": "b",
            "method": "POST",
            "url": "/v1/videos",
            "body": {"prompt": "a fox", "seconds": "4"},
        },
        {"method": "POST", "url": "/v1/videos", "body": {"prompt": "an owl", "size": "1280x720"}},
    ]
    path = tmp_path / "out" / "ads.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + "\n")
    async with rig.client() as client:
        started = structured(await client.call_tool("batch", {"jsonl_path": str(path), "mode": "native"}))
        assert [item["custom_id"] for item in started["items"]] == ["a", "b", "item-3"]
        assert started["estimated_total_usd"] == pytest.approx(0.4 + 0.4 + 0.4)
        done = structured(
            await client.call_tool("get_batch", {"batch_id": started["batch_id"], "wait_seconds": 600})
        )
    assert done["totals"] == {"completed": 3}
    assert probe(Path(done["items"]["a"]["files"]["video"])).seconds == pytest.approx(4.0, abs=0.01)
    assert done["items"]["item-3"]["size"] == "1280x720"
    sent = next(iter((tmp_path / "home" / "batches").glob("*.jsonl"))).read_text().splitlines()
    assert json.loads(sent[0])["body"]["seconds"] == "4"  # the wire wants seconds as a string


async def test_every_invalid_item_is_reported_at_once_before_any_request(rig: Rig, tmp_path: Path) -> None:
    requests = [
        {"custom_id": "ok", "prompt": "fine"},
        {"custom_id": "wide", "prompt": "x", "size": "1920x1080"},
        {"custom_id": "long", "prompt": "x", "seconds": 5},
        {"custom_id": "ok", "prompt": "again"},
        {"prompt": "   "},
    ]
    bad_file = tmp_path / "out" / "bad.jsonl"
    bad_file.parent.mkdir(parents=True)
    bad_file.write_text(
        json.dumps(
            {"custom_id": "g", "method": "POST", "url": "/v1/videos/generations", "body": {"prompt": "x"}}
        )
        + "\n{not json\n"
        + json.dumps(
            {"custom_id": "n", "method": "POST", "url": "/v1/videos", "body": {"prompt": "x", "n": 2}}
        )
        + "\n"
    )
    async with rig.client() as client:
        results = [
            await client.call_tool("batch", {"requests": requests, "mode": "direct"}),
            await client.call_tool("batch", {"jsonl_path": str(bad_file)}),
            await client.call_tool("batch", {"jsonl_path": "/etc/hosts"}),
            await client.call_tool("batch", {}),
            await client.call_tool("get_batch", {"batch_id": "nope"}),
        ]
    assert [error_code(result) for result in results] == [
        ("invalid_items", None),
        ("invalid_items", None),
        ("path_not_allowed", "path"),
        ("conflicting_arguments", None),
        ("unknown_batch", "batch_id"),
    ]
    listed, filed, outside, neither, unknown = (error_text(result) for result in results)
    assert "4 problem(s)" in listed
    for fragment in (
        "'wide'",
        "1280x720",
        "'long'",
        "seconds=5",
        "'ok' is used 2 times",
        "'item-5'",
        "prompt is empty",
    ):
        assert fragment in listed
    assert "line 1 ('g')" in filed and "/v1/videos/generations" in filed
    assert "line 2: not valid JSON" in filed
    assert "line 3 ('n')" in filed and "body field(s) n" in filed
    assert "outside the folders" in outside
    assert "either requests" in neither
    assert "batch_id" in unknown
    assert rig.transport.requests == []


async def test_a_dry_run_shows_the_estimate_and_sends_nothing(rig: Rig) -> None:
    async with rig.client() as client:
        planned = structured(await client.call_tool("batch", {"requests": FIVE, "dry_run": True}))
    assert (planned["dry_run"], planned["batch_id"], planned["status"]) == (True, None, "planned")
    assert planned["estimated_total_usd"] == pytest.approx(FIVE_COST)
    assert planned["estimated_seconds_each"] > 0
    assert rig.transport.requests == []


async def test_a_rate_limited_item_is_sent_again_after_the_wait_and_never_twice(rig: Rig) -> None:
    rig.app.state.faults.inject(429, times=1, retry_after=1, methods={"POST"})
    async with rig.client() as client:
        started = structured(await client.call_tool("batch", {"requests": THREE, "mode": "direct"}))
        done = structured(
            await client.call_tool("get_batch", {"batch_id": started["batch_id"], "wait_seconds": 1800})
        )
    assert_done_but_blocked(done, THREE)
    assert rig.transport.count("POST", "/videos") == len(THREE) + 1
    assert 1.0 in rig.clock.slept  # the Retry-After was honoured on the clock
    jobs = await jobs_on_emulator(rig)
    assert sorted(job["prompt"] for job in jobs) == sorted(r["prompt"] for r in THREE)


class SecondCreateRateLimited(httpx2.AsyncBaseTransport):
    """Forwards everything, except that the second `POST /videos` gets a 429 of its own."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.creates = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method == "POST" and request.url.path.endswith("/videos"):
            self.creates += 1
            if self.creates == 2:
                body = {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}
                return httpx2.Response(429, json=body, headers={"retry-after": "7"})
        return await self.inner.handle_async_request(request)


async def stop_after_first_send(rig: Rig) -> str:
    """Run a direct batch of THREE on a server that sends "kite", gets a 429 for "owl" and stops
    while waiting it out; returns the batch id."""
    stalled = StalledClock(rig.clock)
    gate = SecondCreateRateLimited(rig.transport)
    async with serve(rig, clock=stalled, transport=gate, batch_concurrency=1) as client:
        started = structured(await client.call_tool("batch", {"requests": THREE, "mode": "direct"}))
        with anyio.fail_after(10):  # a safety net only: the runner reaches its pause at once
            await stalled.sleeping.wait()
    assert rig.transport.count("POST", "/videos") == 1
    batch_id: str = started["batch_id"]
    return batch_id


def item_statuses(rig: Rig, batch_id: str) -> dict[str | None, str]:
    with Registry.open(rig.root / "home" / "registry", now=rig.clock.now) as registry:
        return {r.custom_id: r.status for r in registry.list_videos(batch_id=batch_id)}


async def test_a_direct_batch_stopped_with_pending_items_is_resumed_by_a_new_server(rig: Rig) -> None:
    batch_id = await stop_after_first_send(rig)
    assert item_statuses(rig, batch_id) == {"kite": "queued", "owl": "pending", "blocked": "pending"}

    async with rig.client() as client:
        done = structured(await client.call_tool("get_batch", {"batch_id": batch_id, "wait_seconds": 1800}))
    assert_done_but_blocked(done, THREE)
    assert rig.transport.count("POST", "/videos") == len(THREE)
    assert len(await jobs_on_emulator(rig)) == len(THREE)


async def test_an_item_whose_send_was_interrupted_is_marked_unknown_and_never_resent(rig: Rig) -> None:
    batch_id = await stop_after_first_send(rig)
    # As if the process had died in the middle of sending "owl".
    with Registry.open(rig.root / "home" / "registry", now=rig.clock.now) as registry:
        (owl,) = [r for r in registry.list_videos(batch_id=batch_id) if r.custom_id == "owl"]
        registry.update_video(owl.local_id, status="submitting")
    rig.clock.advance(3600 + 60)  # past the hour after which a request with no job never started

    async with rig.client() as client:
        done = structured(await client.call_tool("get_batch", {"batch_id": batch_id, "wait_seconds": 1800}))
    # Looked for by the read itself: an hour on, no job of it on the backend, so it never started.
    assert {k: v["status"] for k, v in done["items"].items()} == {
        "kite": "completed",
        "owl": "failed",
        "blocked": "failed",
    }
    assert done["items"]["owl"]["error"]["code"] == "request_lost"
    assert done["still_running"] is False
    assert rig.transport.count("POST", "/videos") == 2


async def test_an_image_reference_is_fitted_and_sent_with_its_item(rig: Rig) -> None:
    request = {
        "custom_id": "field",
        "prompt": "the grass sways",
        "image": data_url(png_bytes(900, 900, (30, 200, 60))),
    }
    async with serve(rig, batch_concurrency=1) as client:
        started = structured(await client.call_tool("batch", {"requests": [request], "mode": "direct"}))
        done = structured(
            await client.call_tool("get_batch", {"batch_id": started["batch_id"], "wait_seconds": 600})
        )
    item = done["items"]["field"]
    assert item["status"] == "completed"
    first = frame_at(Path(item["files"]["video"]), 0.0).convert("RGB").resize((9, 16))
    r, g, b = first.getpixel((4, 8))  # type: ignore[misc]
    assert g > 150 and r < 90 and b < 110


async def test_auto_mode_sends_directly_when_the_backend_has_no_batch_api(rig: Rig) -> None:
    profile = BackendProfile(name="no-batches", capabilities=ALL_CAPABILITIES - {"batches"})
    async with serve(rig, profile=profile) as client:
        planned = structured(await client.call_tool("batch", {"requests": FIVE[:1], "dry_run": True}))
        refused = await client.call_tool("batch", {"requests": FIVE[:1], "mode": "native"})
    assert planned["mode"] == "direct"
    assert error_code(refused) == ("unsupported", "mode")
    assert "mode='direct'" in error_text(refused)
    assert rig.transport.requests == []


async def test_batch_tools_declare_their_effects(rig: Rig) -> None:
    async with rig.client() as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    batch, get_batch = tools["batch"], tools["get_batch"]
    assert batch.annotations is not None and get_batch.annotations is not None
    assert (batch.annotations.read_only_hint, batch.annotations.idempotent_hint) == (False, False)
    assert (batch.annotations.destructive_hint, batch.annotations.open_world_hint) == (False, True)
    # get_batch downloads completed items, so it is not read-only; asking again changes nothing more.
    assert (get_batch.annotations.read_only_hint, get_batch.annotations.idempotent_hint) == (False, True)
    for text in ("COST", "TIME", "NEXT", "not guaranteed"):
        assert text in (batch.description or "")
    assert batch.output_schema is not None and get_batch.output_schema is not None
    assert catalog.DEFAULT_MODEL in json.dumps(batch.input_schema)
