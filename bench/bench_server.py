"""(a) tool round trip and (b) cold start, each against a bare MCPServer over stdio.

(a) `get_video` on a completed, downloaded video vs an `echo` tool, calls interleaved A/B over two
live stdio sessions. (b) spawn → `initialize` → `tools/list` answered, for `sora-mcp serve` vs
the bare server, runs interleaved.

    python bench/bench_server.py [--quick]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from _common import QUICK, child_env, median, report

HERE = Path(__file__).resolve().parent


def _sora(home: Path) -> StdioServerParameters:
    env = child_env(home, SORA_MCP_EMULATOR_SPEED="400")
    return StdioServerParameters(command=sys.executable, args=["-m", "sora_mcp", "serve"], env=env)


def _echo(home: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=[str(HERE / "echo_server.py")], env=child_env(home)
    )


async def _cold_start(params: StdioServerParameters) -> float:
    started = time.perf_counter()
    async with Client(params) as client:
        await client.list_tools()
        return time.perf_counter() - started


async def round_trip(home: Path, calls: int) -> list[tuple[str, str]]:
    async with Client(_sora(home)) as sora, Client(_echo(home)) as echo:
        made = await sora.call_tool(
            "generate", {"prompt": "a lighthouse at dusk, slow dolly in", "wait_seconds": 40}
        )
        video_id = made.structured_content["videos"][0]["id"]
        done = await sora.call_tool("get_video", {"video_id": video_id, "wait_seconds": 40})
        assert done.structured_content and done.structured_content["video"]["status"] == "completed", done
        a: list[float] = []
        b: list[float] = []
        sizes: list[int] = []
        for _ in range(calls):
            t = time.perf_counter()
            result = await sora.call_tool("get_video", {"video_id": video_id})
            a.append(time.perf_counter() - t)
            sizes.append(len(result.model_dump_json()))
            t = time.perf_counter()
            await echo.call_tool("echo", {"text": "x"})
            b.append(time.perf_counter() - t)
    return [
        ("get_video (completed, downloaded) p50", f"{median(a) * 1000:.1f} ms"),
        ("echo tool p50", f"{median(b) * 1000:.1f} ms"),
        ("ratio get_video / echo", f"{median(a) / median(b):.2f}x (goal <= 1.3x)"),
        ("get_video answer size", f"{int(median([float(s) for s in sizes]))} bytes"),
    ]


async def cold_start(home: Path, runs: int) -> list[tuple[str, str]]:
    a: list[float] = []
    b: list[float] = []
    for i in range(runs):
        a.append(await _cold_start(_sora(home / f"cold{i}")))
        b.append(await _cold_start(_echo(home)))
    return [
        ("sora-mcp serve spawn -> tools/list p50", f"{median(a) * 1000:.0f} ms"),
        ("bare MCPServer spawn -> tools/list p50", f"{median(b) * 1000:.0f} ms"),
        ("ratio", f"{median(a) / median(b):.2f}x (goal <= 1.2x)"),
    ]


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        report("(a) tool round trip over stdio", await round_trip(home, 10 if QUICK else 200))
        report("(b) cold start over stdio", await cold_start(home, 2 if QUICK else 15))


if __name__ == "__main__":
    anyio.run(main)
