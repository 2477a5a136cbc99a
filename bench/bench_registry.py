"""(e) The registry at 100,000 videos: list, filter, get with lineage, and server start.

A registry seeded by `seed_registry.py` (100,000 finished videos; 2,000 in --quick) is queried in
process — newest 20, a status filter, a text filter, one video with its parent and children —
and `sora-mcp serve` is started on it and on an empty one, interleaved, until `tools/list`
answers. The `sora://videos/{id}` resource (a record with lineage, no backend call) is read over
that live stdio session too.

    python bench/bench_registry.py [--quick]
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

from _common import QUICK, child_env, median, report
from seed_registry import seed
from sora_mcp.registry.store import Registry
from sora_mcp.studio.lineage import children_links, parent_link

COUNT = 2_000 if QUICK else 100_000
RUNS = 10 if QUICK else 200


def _p50_ms(fn: Callable[[], Any], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return median(times) * 1000


def queries(folder: Path) -> list[tuple[str, str]]:
    t = time.perf_counter()
    registry = Registry.open(folder)
    opened = (time.perf_counter() - t) * 1000
    rng = random.Random(3)
    # Videos with a parent: their lineage has both a parent and (often) siblings' parent children.
    with_parent = [r for r in registry.list_videos(text="take", limit=5_000) if r.parent_id][:200]

    def lineage() -> None:
        record = registry.get_video(rng.choice(with_parent).parent_id or "")
        assert record is not None
        parent_link(registry, record)
        children_links(registry, record)

    try:
        figures = {
            "list newest 20": _p50_ms(lambda: registry.list_videos(limit=20)),
            "status filter (failed), 20": _p50_ms(lambda: registry.list_videos(status="failed", limit=20)),
            "text filter ('heron'), 20": _p50_ms(lambda: registry.list_videos(text="heron", limit=20)),
            "get_video + lineage (registry)": _p50_ms(lineage),
        }
    finally:
        registry.close()
    goals = {"get_video + lineage (registry)": 5.0}
    rows = [(f"{k} p50", f"{v:.2f} ms (goal <= {goals.get(k, 20.0):g} ms)") for k, v in figures.items()]
    return [*rows, ("Registry.open on it", f"{opened:.0f} ms")]


def _serve(home: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "sora_mcp", "serve"],
        env=child_env(home, SORA_MCP_EMULATOR_SPEED="400"),
    )


async def _start(home: Path) -> float:
    t = time.perf_counter()
    async with Client(_serve(home)) as client:
        await client.list_tools()
        return time.perf_counter() - t


async def start_and_read(big: Path, empty: Path, runs: int, video_id: str) -> list[tuple[str, str]]:
    a: list[float] = []
    b: list[float] = []
    for _ in range(runs):
        a.append(await _start(big))
        b.append(await _start(empty))
    reads: list[float] = []
    async with Client(_serve(big)) as client:
        for _ in range(RUNS // 4):
            t = time.perf_counter()
            await client.read_resource(f"sora://videos/{video_id}")
            reads.append(time.perf_counter() - t)
    return [
        (f"start -> tools/list, {COUNT} videos p50", f"{median(a) * 1000:.0f} ms"),
        ("start -> tools/list, empty registry p50", f"{median(b) * 1000:.0f} ms"),
        ("ratio", f"{median(a) / median(b):.2f}x (goal <= 1.1x)"),
        ("sora://videos/{id} with lineage over stdio p50", f"{median(reads) * 1000:.1f} ms"),
    ]


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        big, empty = Path(tmp) / "big", Path(tmp) / "empty"
        took = seed(big / "home" / "registry", COUNT)
        Registry.open(empty / "home" / "registry").close()
        report(
            f"(e) registry with {COUNT} videos, in process (seeded in {took:.0f} s)",
            queries(big / "home" / "registry"),
        )
        with Registry.open(big / "home" / "registry") as registry:
            (parent,) = [r for r in registry.list_videos(limit=500) if r.parent_id][:1] or [
                registry.list_videos(limit=1)[0]
            ]
            video_id = parent.parent_id or parent.id or parent.local_id
        report(
            f"(e) sora-mcp serve on {COUNT} videos vs an empty registry",
            await start_and_read(big, empty, 2 if QUICK else 9, video_id),
        )


if __name__ == "__main__":
    anyio.run(main)
