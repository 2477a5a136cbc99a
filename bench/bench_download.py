"""(f) one large download: sora-mcp's wire client vs a raw httpx2 stream, throughput and peak RSS.

A local server streams SIZE bytes as `/v1/videos/{id}/content` with a Content-Length. Each side
runs in its own child process (so peak RSS is its own), alternating A/B: sora-mcp's
`VideosClient.download_content` (temp file, fsync, atomic rename) vs the plain loop
`async for chunk in response.aiter_bytes(): file.write(chunk)` into one file.

    python bench/bench_download.py [--quick]
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx2
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from _common import QUICK, free_port, median, report, wait_for_port

SIZE = (64 if QUICK else 320) * 2**20
_BLOCK = os.urandom(2**20)


async def _content(request: Request) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(SIZE // len(_BLOCK)):
            yield _BLOCK

    return StreamingResponse(body(), media_type="video/mp4", headers={"content-length": str(SIZE)})


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _child(side: str, base_url: str, dest: Path) -> None:
    async with httpx2.AsyncClient(base_url=base_url, timeout=httpx2.Timeout(120)) as http:
        if side == "sora":
            from sora_mcp.api.client import VideosClient

            client = VideosClient(http, api_key="sk-bench")
            before = _rss_kib()
            started = time.perf_counter()
            await client.download_content("video_bench", dest)
        else:
            before = _rss_kib()
            started = time.perf_counter()
            async with http.stream("GET", "/videos/video_bench/content") as response:
                with dest.open("wb") as out:
                    async for chunk in response.aiter_bytes():
                        out.write(chunk)
        elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    assert dest.stat().st_size == SIZE
    print(json.dumps({"seconds": elapsed, "rss_growth_kib": peak - before}))


def _run(side: str, base_url: str, folder: Path) -> dict[str, float]:
    dest = folder / f"{side}.mp4"
    out = subprocess.run(
        [sys.executable, __file__, "--child", side, base_url, str(dest), *(["--quick"] if QUICK else [])],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"{side} download failed:\n{out.stderr}")
    dest.unlink()
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    port = free_port()
    app = Starlette(routes=[Route("/v1/videos/{video_id}/content", _content)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    wait_for_port(port)
    base_url = f"http://127.0.0.1:{port}/v1"
    ours: list[dict[str, float]] = []
    theirs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(1 if QUICK else 5):
            ours.append(_run("sora", base_url, Path(tmp)))
            theirs.append(_run("raw", base_url, Path(tmp)))
    server.should_exit = True
    mib = SIZE / 2**20
    a = mib / median([r["seconds"] for r in ours])
    b = mib / median([r["seconds"] for r in theirs])
    report(
        f"(f) a {mib:.0f} MiB download",
        [
            ("throughput sora-mcp / raw httpx2", f"{a:.0f} / {b:.0f} MiB/s = {a / b:.2f}x (goal >= 0.9x)"),
            (
                "peak RSS growth sora-mcp / raw",
                f"{median([r['rss_growth_kib'] for r in ours]) / 1024:.1f} / {median([r['rss_growth_kib'] for r in theirs]) / 1024:.1f} MiB (goal <= 16 MiB)",
            ),
        ],
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        anyio.run(_child, sys.argv[2], sys.argv[3], Path(sys.argv[4]))
    else:
        main()
