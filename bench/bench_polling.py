"""(c) polling: status requests per job and detection latency, sora-mcp vs the openai SDK.

Both follow the same kind of 4 s clip on a standalone emulator through a counting relay:
sora-mcp with `generate` + `get_video(wait_seconds=…)` over stdio (its auto-download is not
counted: only status GETs), the official SDK with `videos.create_and_poll`. Detection latency is
the first relayed `completed` answer minus the instant the emulator finished the job (its
`created_at + render_seconds`, read from the emulator's own records). Jobs alternate A/B.

    python bench/bench_polling.py [--quick]
"""

from __future__ import annotations

import json
import sys
import tempfile
import warnings
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters
from openai import AsyncOpenAI

from _common import QUICK, Relay, child_env, emulator, median, report

# The SDK warns that OpenAI's own Sora API is gone; here it talks to the emulator.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=__name__)

SPEED = 6.0  # a 4 s sora-2 clip then renders in several seconds, like a short real job


def _finished_at(home: Path, video_id: str) -> float:
    record = json.loads((home / "emulator" / "videos" / f"{video_id}.json").read_text())
    return float(record["created_at"]) + float(record["render_seconds"])


def _follow(relay: Relay, video_id: str, home: Path) -> tuple[int, float]:
    seen = [(t, s) for t, vid, s in relay.observations if vid == video_id]
    done = min(t for t, s in seen if s == "completed")
    return len(seen), done - _finished_at(home, video_id)


async def main() -> None:
    jobs = 2 if QUICK else 8
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        with emulator(home, speed=SPEED) as upstream, Relay(upstream) as relay:
            env = child_env(
                home, OPENAI_BASE_URL=relay.base_url, OPENAI_API_KEY="sk-bench", SORA_MCP_BACKEND="remote"
            )
            params = StdioServerParameters(command=sys.executable, args=["-m", "sora_mcp", "serve"], env=env)
            sdk = AsyncOpenAI(base_url=relay.base_url, api_key="sk-bench")
            ours: list[tuple[int, float]] = []
            theirs: list[tuple[int, float]] = []
            async with Client(params) as client:
                for i in range(jobs):
                    started = await client.call_tool("generate", {"prompt": f"a paper boat drifts, take {i}"})
                    video_id = started.structured_content["videos"][0]["id"]
                    status = "queued"
                    while status not in ("completed", "failed"):
                        got = await client.call_tool("get_video", {"video_id": video_id, "wait_seconds": 40})
                        status = got.structured_content["video"]["status"]
                    ours.append(_follow(relay, video_id, home))
                    video = await sdk.videos.create_and_poll(
                        prompt=f"a paper boat drifts, sdk take {i}", model="sora-2"
                    )
                    theirs.append(_follow(relay, video.id, home))
            await sdk.close()
    a_gets, a_lat = median([float(g) for g, _ in ours]), median([lat for _, lat in ours])
    b_gets, b_lat = median([float(g) for g, _ in theirs]), median([lat for _, lat in theirs])
    report(
        "(c) polling a 4 s clip through a counting relay",
        [
            (
                "status GETs per job, sora-mcp / openai SDK",
                f"{a_gets:.0f} / {b_gets:.0f} = {a_gets / b_gets:.2f}x (goal <= 0.5x)",
            ),
            ("detection latency, sora-mcp / openai SDK", f"{a_lat:+.2f} s / {b_lat:+.2f} s (goal <= +0.5 s)"),
        ],
    )


if __name__ == "__main__":
    anyio.run(main)
