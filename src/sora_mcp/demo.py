"""`sora-mcp demo`: a newcomer's end-to-end production, done exactly as an assistant would do it.

It starts `sora-mcp serve` as a subprocess and talks to it over stdio with the MCP SDK's client:
three shots (one from a first-frame image), a character cut from a shot and a new shot starring
it, an extension, an edit and a batch of ad variants — every job followed with progress
notifications, every file checked with PyAV — and finally the shots cut together into one piece.
By default it forces the built-in emulator so it never spends money; any failure exits non-zero.
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
from sora_mcp.media.video import concat_videos, probe

SIZE = "1280x720"
CHARACTER = "Skipper the paper boat"
SHOTS: list[dict[str, Any]] = [
    {
        "title": "opening",
        "prompt": "Wide establishing shot, 35mm, dawn: a red paper boat drifts down a rain-soaked "
        "cobblestone gutter, soft blue light, mist; camera tracks slowly left with the boat. "
        "Diegetic water sounds only.",
        "seconds": 4,
    },
    {
        "title": "close-up",
        "prompt": "Close-up, 85mm, shallow depth of field: the red paper boat spins in a small whirlpool "
        "by a storm drain, warm streetlight glints on wet stone; locked-off camera.",
        "seconds": 8,
    },
    {
        "title": "from a still",
        "prompt": "Starting exactly on this frame: the sun rises over the harbour, the paper boat sails "
        "out past the lighthouse; slow push-in, golden palette.",
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


class Demo:
    """One MCP session and what it has checked so far."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.failures: list[str] = []

    async def call(self, tool: str, arguments: dict[str, Any], *, follow: bool = False) -> dict[str, Any]:
        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            _say(f"    progress {progress:5.1f}/{total or 100:.0f}  {(message or '')[:110]}")

        result = await self.client.call_tool(
            tool, arguments, progress_callback=on_progress if follow else None
        )
        return _ok(result, tool)

    def check(self, video: dict[str, Any], seconds: float, label: str) -> Path | None:
        """The video completed and its MP4 has the expected size and length."""
        if video["status"] != "completed" or "video" not in video["files"]:
            self.failures.append(f"{label}: {video['id']} ended {video['status']}: {video.get('error')}")
            return None
        path = Path(video["files"]["video"])
        info = probe(path)
        width, height = (int(x) for x in video["size"].split("x"))
        good = (info.width, info.height) == (width, height) and abs(info.seconds - seconds) < 0.1
        _say(
            f"  {'OK ' if good else 'BAD'} [{label}] {path.name}  {info.width}x{info.height}, "
            f"{info.seconds:.2f} s, {info.frames} frames, {info.codec}"
        )
        if not good:
            self.failures.append(f"{label}: {path} is {info.width}x{info.height} {info.seconds:.2f}s")
        return path


async def _main(remote: bool) -> int:
    env = dict(os.environ)
    if not remote:
        env["SORA_MCP_BACKEND"] = "emulator"
    settings = Settings.from_env(env)
    params = StdioServerParameters(command=sys.executable, args=["-m", "sora_mcp", "serve"], env=env)
    _say(f"Starting `sora-mcp serve` over stdio (backend: {settings.backend_label})")
    async with Client(params, read_timeout_seconds=300) as client:
        demo = Demo(client)
        tools = await client.list_tools()
        _say("Tools: " + ", ".join(t.name for t in tools.tools))
        prompts = await client.list_prompts()
        _say("Workflow prompts: " + ", ".join(p.name for p in prompts.prompts))
        caps = await client.read_resource("sora://capabilities")
        first = caps.contents[0]
        capabilities = json.loads(first.text if isinstance(first, TextResourceContents) else "{}")
        _say(
            f"Models: {', '.join(capabilities['models'])}; simulated: {capabilities['backend']['simulated']}"
        )
        piece = await _produce(demo, settings.output_dir)
        listing = await demo.call("list_videos", {"limit": 20})
        _say(f"\nRegistry: {listing['count']} most recent videos")
        for video in listing["videos"]:
            _say(
                f"  {video['id'][:28]}…  {video['status']:<10} {video['seconds']:>3}s  {video['relation']:<9}"
            )

    _say(f"\nFiles are in {settings.output_dir}; the registry is in {settings.registry_dir}.")
    if piece is not None:
        _say(f"The finished piece: {piece}")
    if settings.is_emulator:
        _say(
            "These clips are SIMULATED by the built-in emulator: set OPENAI_API_KEY / OPENAI_BASE_URL for real ones."
        )
    if demo.failures:
        _say("\nDEMO FAILED:\n  " + "\n  ".join(demo.failures))
        return 1
    _say("\nDemo finished: every job completed, every file downloaded and checked.")
    return 0


async def _produce(demo: Demo, output_dir: Path) -> Path | None:
    """The production, step by step; each step prints its part and checks its files."""
    shots = await _three_shots(demo, output_dir)
    starring = await _character_and_starring(demo, shots[0])
    extended = await _extend(demo, shots[1])
    edited = await _edit(demo, shots[2])
    await _ad_batch(demo)
    return await _cut(demo, [shots[0], starring, extended, edited], output_dir)


async def _three_shots(demo: Demo, output_dir: Path) -> list[dict[str, Any]]:
    """Start every shot at once (they render in parallel), then follow each to its file."""
    _say("\n== 1. Three shots (generate, then get_video with progress)")
    shots: list[dict[str, Any]] = []
    for shot in SHOTS:
        args: dict[str, Any] = {"prompt": shot["prompt"], "size": SIZE, "seconds": shot["seconds"]}
        if shot.get("image"):
            args["image"] = str(_first_frame(output_dir))
        started = await demo.call("generate", args)
        video = started["videos"][0]
        _say(
            f"  [{shot['title']}] {video['id'][:28]}… {shot['seconds']} s, "
            f"est. ${started['estimated_cost_usd']:.2f}, ~{started['estimated_seconds_each']} s"
        )
        shots.append(video)
    for shot, video in zip(SHOTS, shots, strict=True):
        _say(f"  waiting for [{shot['title']}]")
        done = await demo.call("get_video", {"video_id": video["id"], "wait_seconds": 300}, follow=True)
        video.update(done["video"])
        demo.check(video, shot["seconds"], shot["title"])
    return shots


async def _character_and_starring(demo: Demo, source: dict[str, Any]) -> dict[str, Any]:
    _say(f"\n== 2. A character cut from the opening shot, then a shot starring '{CHARACTER}'")
    made = await demo.call(
        "create_character",
        {"name": CHARACTER, "video_id": source["id"], "start_seconds": 0.5, "seconds": 3},
    )
    _say(f"  character {made['character']['id']} from a {made['clip_seconds']:.1f} s clip")
    starring = await demo.call(
        "generate",
        {
            "prompt": f"{CHARACTER} bobs under a stone bridge at dusk; lanterns reflect in the canal; slow dolly.",
            "characters": [CHARACTER],
            "size": SIZE,
            "wait_seconds": 300,
        },
        follow=True,
    )
    video: dict[str, Any] = starring["videos"][0]
    demo.check(video, 4, "starring")
    return video


async def _extend(demo: Demo, source: dict[str, Any]) -> dict[str, Any]:
    _say("\n== 3. Extend the close-up by 4 s (the file is the stitched whole)")
    extended = await demo.call(
        "extend",
        {
            "video_id": source["id"],
            "prompt": "the whirlpool releases the boat downstream",
            "seconds": 4,
            "wait_seconds": 300,
        },
        follow=True,
    )
    budget = extended["budget"]
    _say(f"  {budget['extensions_left']} extensions and {budget['seconds_left']} s left for this video")
    demo.check(extended["video"], 12, "extended")
    return dict(extended["video"])


async def _edit(demo: Demo, source: dict[str, Any]) -> dict[str, Any]:
    _say("\n== 4. Edit the harbour shot: one change at a time")
    edited = await demo.call(
        "edit",
        {
            "video_id": source["id"],
            "prompt": "Same shot, same framing; switch to a cool moonlit palette.",
            "wait_seconds": 300,
        },
        follow=True,
    )
    demo.check(edited["video"], 4, f"{edited['relation']}ed")
    return dict(edited["video"])


async def _ad_batch(demo: Demo) -> None:
    _say("\n== 5. A batch of three ad variants")
    variants = [
        {
            "custom_id": f"ad-{colour}",
            "prompt": f"A {colour} paper boat on a white backdrop, slow 30° orbit, "
            "soft key light, headline 'Fold your adventure' bottom centre.",
            "size": SIZE,
        }
        for colour in ("red", "yellow", "teal")
    ]
    started = await demo.call("batch", {"requests": variants})
    _say(
        f"  batch {started['batch_id']} ({started['mode']} mode), est. ${started['estimated_total_usd']:.2f}"
    )
    batch = await demo.call("get_batch", {"batch_id": started["batch_id"], "wait_seconds": 600}, follow=True)
    for custom_id, item in batch["items"].items():
        demo.check({**item, "id": item["video_id"]}, 4, custom_id)


async def _cut(demo: Demo, parts: list[dict[str, Any]], output_dir: Path) -> Path | None:
    _say("\n== 6. Cut the piece together")
    paths = [Path(v["files"]["video"]) for v in parts if "video" in v.get("files", {})]
    if len(paths) != len(parts):
        demo.failures.append("some shots of the piece are missing")
        return None
    piece = output_dir / "demo-piece.mp4"
    await anyio.to_thread.run_sync(concat_videos, paths, piece)
    info = probe(piece)
    _say(f"  {piece.name}: {info.width}x{info.height}, {info.seconds:.2f} s from {len(paths)} shots")
    if abs(info.seconds - 24.0) > 0.1:
        demo.failures.append(f"the piece is {info.seconds:.2f} s, expected 24 s")
    return piece


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
