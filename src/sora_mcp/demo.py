"""`sora-mcp demo`: a newcomer's end-to-end run, done exactly as an assistant would do it.

It starts `sora-mcp serve` as a subprocess, talks to it over stdio with the MCP SDK's client,
produces a three-shot piece (one shot from a first-frame image), follows every job with progress
notifications, checks each downloaded MP4 with PyAV and prints where everything is. By default it
forces the built-in emulator so it never spends money; any failure makes it exit non-zero.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult, TextResourceContents

from sora_mcp.config import Settings
from sora_mcp.media import probe

SIZE = "1280x720"
SHOTS: list[dict[str, Any]] = [
    {
        "title": "opening",
        "prompt": "Wide establishing shot, 35mm, dawn: a red paper boat drifts down a rain-soaked cobblestone "
        "gutter, soft blue light, mist; camera tracks slowly left with the boat. Diegetic water sounds only.",
        "seconds": 4,
    },
    {
        "title": "close-up",
        "prompt": "Close-up, 85mm, shallow depth of field: the red paper boat spins in a small whirlpool by a "
        "storm drain, warm streetlight glints on wet stone; locked-off camera.",
        "seconds": 8,
    },
    {
        "title": "from a still",
        "prompt": "Starting exactly on this frame: the sun rises over the harbour, the paper boat sails out "
        "past the lighthouse; slow push-in, golden palette.",
        "seconds": 4,
        "image": True,
    },
]


def run_demo(*, remote: bool = False) -> int:
    """Run the demo; 0 on success, 1 if anything failed."""
    try:
        return anyio.run(_main, remote)
    except Exception as exc:  # the demo's job is to say clearly that it failed, whatever failed
        print(f"\nDEMO FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _say(text: str = "") -> None:
    print(text, flush=True)


async def _main(remote: bool) -> int:
    env = dict(os.environ)
    if not remote:
        env["SORA_MCP_BACKEND"] = "emulator"
    settings = Settings.from_env(env)
    params = StdioServerParameters(command=sys.executable, args=["-m", "sora_mcp", "serve"], env=env)
    _say(f"Starting `sora-mcp serve` over stdio (backend: {settings.backend_label})")
    failures: list[str] = []
    async with Client(params, read_timeout_seconds=120) as client:
        tools = await client.list_tools()
        _say("Tools: " + ", ".join(t.name for t in tools.tools))
        caps_result = await client.read_resource("sora://capabilities")
        first = caps_result.contents[0]
        caps = json.loads(first.text if isinstance(first, TextResourceContents) else "{}")
        _say(f"Models: {', '.join(caps['models'])}; simulated: {caps['backend']['simulated']}")

        image_path = _first_frame(settings.output_dir)
        started: list[tuple[dict[str, Any], str]] = []
        for shot in SHOTS:
            args: dict[str, Any] = {"prompt": shot["prompt"], "size": SIZE, "seconds": shot["seconds"]}
            if shot.get("image"):
                args["image"] = str(image_path)
            result = _ok(await client.call_tool("generate", args), "generate")
            video = result["videos"][0]
            started.append((shot, video["id"]))
            _say(
                f"\n[{shot['title']}] started {video['id']} — {shot['seconds']} s at {SIZE}, "
                f"estimated ${result['estimated_cost_usd']:.2f}, ~{result['estimated_seconds_each']} s"
            )

        for shot, video_id in started:
            _say(f"\nWaiting for [{shot['title']}] {video_id}")

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                _say(f"  progress {progress:5.1f}/{total or 100:.0f}  {message or ''}")

            result = _ok(
                await client.call_tool(
                    "get_video", {"video_id": video_id, "wait_seconds": 300}, progress_callback=on_progress
                ),
                "get_video",
            )
            video = result["video"]
            if video["status"] != "completed" or "video" not in video["files"]:
                failures.append(f"{video_id} ended {video['status']}: {video.get('error')}")
                continue
            path = Path(video["files"]["video"])
            info = probe(path)
            want_w, want_h = (int(x) for x in SIZE.split("x"))
            good = (info.width, info.height) == (want_w, want_h) and abs(info.seconds - shot["seconds"]) < 0.1
            _say(
                f"  {'OK ' if good else 'BAD'} {path}  {info.width}x{info.height}, {info.seconds:.2f} s, "
                f"{info.frames} frames, {info.codec}"
            )
            if not good:
                failures.append(
                    f"{path} is {info.width}x{info.height} {info.seconds:.2f}s, expected {SIZE} {shot['seconds']}s"
                )

        listing = _ok(await client.call_tool("list_videos", {"limit": 5}), "list_videos")
        _say(f"\nRegistry ({listing['count']} most recent):")
        for video in listing["videos"]:
            _say(f"  {video['id']}  {video['status']:<11} {video['seconds']:>2}s  {video['prompt'][:60]}…")

    _say(f"\nFiles are in {settings.output_dir}; the registry is in {settings.registry_dir}.")
    if settings.is_emulator:
        _say(
            "These clips are SIMULATED by the built-in emulator: set OPENAI_API_KEY / OPENAI_BASE_URL for real ones."
        )
    if failures:
        _say("\nDEMO FAILED:\n  " + "\n  ".join(failures))
        return 1
    _say("\nDemo finished: every clip completed, downloaded and checked.")
    return 0


def _ok(result: CallToolResult, tool: str) -> dict[str, Any]:
    if result.is_error or result.structured_content is None:
        text = " ".join(getattr(block, "text", "") for block in result.content)
        raise RuntimeError(f"{tool} failed: {text}")
    return dict(result.structured_content)


def _first_frame(folder: Path) -> Path:
    """A still to start a shot from, drawn here so the demo needs no assets."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "demo-first-frame.png"
    image = Image.new("RGB", (1600, 900), (18, 32, 64))
    draw = ImageDraw.Draw(image)
    for i in range(0, 900, 6):
        shade = 40 + i * 180 // 900
        draw.line([(0, i), (1600, i)], fill=(shade, shade // 2 + 40, 90))
    draw.ellipse([650, 300, 950, 600], fill=(250, 190, 80))
    draw.rectangle([0, 640, 1600, 900], fill=(20, 50, 90))
    draw.polygon([(700, 700), (900, 700), (860, 760), (740, 760)], fill=(210, 40, 40))
    image.save(path)
    return path
