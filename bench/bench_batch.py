"""(d) a direct-mode batch with 10 % injected 429s: POSTs, content GETs, duplicates, wall time.

`sora-mcp serve` (remote backend) → a counting relay that answers every 10th create POST with
429 + `retry-after: 1` → a standalone emulator. The batch of N 4 s clips runs in `direct` mode and
is followed with get_batch until nothing can change. The ideal wall time is one clip's render
(the emulator renders every job in parallel) plus one retry-after pause.

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
from mcp import Client, StdioServerParameters
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from _common import QUICK, Relay, child_env, emulator, report

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
    creates = relay.counts[("POST", "create")]
    rejected = sum(1 for n in range(1, relay.posts + 1) if n % 10 == 0)
    duplicates = sum(c - 1 for c in prompts.values() if c > 1)
    ideal = RENDER_SECONDS + 1.0
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
            ("wall vs ideal", f"{wall:.1f} s / {ideal:.1f} s = {wall / ideal:.1f}x"),
        ],
    )


if __name__ == "__main__":
    anyio.run(main)
