"""(d) a direct-mode batch with 10 % injected 429s: POSTs, content GETs, duplicates, wall time.

`sora-mcp serve` (remote backend) → a counting relay that answers every 10th create POST with
429 + `retry-after: 1` → a standalone emulator. The batch of N 4 s clips runs in `direct` mode and
is followed with get_batch until nothing can change.

The baseline for its wall time is the same emulator doing the same work for a client with no
overhead and no 429s: N fresh jobs created straight through a fault-free relay, sent as many at
once as the batch runner sends, each polled until it completes and then its video and thumbnail
fetched, as many at once as the server downloads. The emulator renders a clip when its content is
first fetched, on the same two cores, so this baseline is render-bound; the batch's figure also
holds its 429s' retry-after pauses.

    python bench/bench_batch.py [--quick]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from _common import QUICK, Relay, child_env, emulator, report
from sora_mcp.batch.runner import DEFAULT_CONCURRENCY as SENT_AT_ONCE
from sora_mcp.studio.downloads import DOWNLOADS_AT_ONCE

SPEED = 40.0
RENDER_SECONDS = 4 * 8.0 / SPEED  # catalogue: sora-2 renders 8 s per output second


def _every_tenth_create(request: Request, n: int) -> Response | None:
    if request.method == "POST" and request.url.path.rstrip("/") == "/v1/videos" and n % 10 == 0:
        body = {
            "error": {
                "message": "Rate limit reached.",
                "type": "rate_limit_error",
                "code": "rate_limit_exceeded",
                "param": None,
            }
        }
        return JSONResponse(body, status_code=429, headers={"retry-after": "1"})
    return None


async def direct_client(base_url: str, items: int) -> float:
    """Seconds for a bare client to have `items` fresh clips made and fetched (see above)."""
    sending, fetching = anyio.CapacityLimiter(SENT_AT_ONCE), anyio.CapacityLimiter(DOWNLOADS_AT_ONCE)

    async def one(http: httpx2.AsyncClient, i: int) -> None:
        async with sending:
            body = {"prompt": f"baseline {i}: a sneaker on a rotating plinth", "seconds": "4"}
            made = await http.post("/videos", json=body)
        made.raise_for_status()
        video_id = made.json()["id"]
        while True:  # polled briskly: at most 0.1 s late
            status = (await http.get(f"/videos/{video_id}")).json()["status"]
            if status in ("completed", "failed"):
                break
            await anyio.sleep(0.1)
        assert status == "completed", status
        async with fetching:
            for variant in ("video", "thumbnail"):
                (
                    await http.get(f"/videos/{video_id}/content", params={"variant": variant})
                ).raise_for_status()

    started = time.perf_counter()
    headers = {"authorization": "Bearer sk-bench"}
    async with (
        httpx2.AsyncClient(base_url=base_url, headers=headers, timeout=httpx2.Timeout(600)) as http,
        anyio.create_task_group() as group,
    ):
        for i in range(items):
            group.start_soon(one, http, i)
    return time.perf_counter() - started


async def main() -> None:
    items = 20 if QUICK else 200
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        with emulator(home, speed=SPEED) as upstream, Relay(upstream, fault=_every_tenth_create) as relay:
            env = child_env(
                home,
                OPENAI_BASE_URL=relay.base_url,
                OPENAI_API_KEY="sk-bench",
                SORA_MCP_BACKEND="remote",
                # A remote backend asks before spending over $1; the benchmark's batch is wanted.
                SORA_MCP_CONFIRM_ABOVE_USD="off",
            )
            params = StdioServerParameters(command=sys.executable, args=["-m", "sora_mcp", "serve"], env=env)
            requests = [
                {"prompt": f"ad variant {i}: a sneaker on a rotating plinth", "custom_id": f"v{i}"}
                for i in range(items)
            ]
            async with Client(params) as client:
                started = time.perf_counter()
                made = await client.call_tool("batch", {"requests": requests, "mode": "direct"})
                assert made.structured_content, made
                batch_id = made.structured_content["batch_id"]
                state: dict[str, Any] = {"still_running": True}
                while state["still_running"]:
                    got = await client.call_tool("get_batch", {"batch_id": batch_id, "wait_seconds": 40})
                    assert got.structured_content, got
                    state = got.structured_content
                wall = time.perf_counter() - started
            prompts = Counter(
                json.loads(p.read_text())["prompt"] for p in (home / "emulator" / "videos").glob("*.json")
            )
            with Relay(upstream) as plain:
                ideal = await direct_client(plain.base_url, items)
    creates = relay.counts[("POST", "create")]
    rejected = sum(1 for n in range(1, relay.posts + 1) if n % 10 == 0)
    duplicates = sum(c - 1 for c in prompts.values() if c > 1)
    report(
        f"(d) direct batch of {items} with every 10th create answered 429",
        [
            ("create POSTs (of which 429)", f"{creates} ({rejected}); ideal {items} + {rejected}"),
            (
                "content GETs: video / thumbnail",
                f"{relay.counts[('GET', 'content:video')]} / {relay.counts[('GET', 'content:thumbnail')]} (goal exactly {items} each)",
            ),
            ("status GETs", f"{relay.counts[('GET', 'status')]}"),
            ("duplicate jobs upstream", f"{duplicates} (goal 0)"),
            ("jobs upstream / items", f"{sum(prompts.values())} / {items}"),
            ("totals", json.dumps(state.get("totals"))),
            (
                f"wall vs a bare client ({SENT_AT_ONCE} sent, {DOWNLOADS_AT_ONCE} fetched at once, no 429s)",
                f"{wall:.1f} s / {ideal:.1f} s = {wall / ideal:.2f}x",
            ),
            ("one clip's render wait (catalogue / speed)", f"{RENDER_SECONDS:.1f} s"),
        ],
    )


if __name__ == "__main__":
    anyio.run(main)
