"""The studio view in a real headless Chromium, hosted by a minimal MCP Apps host page.

The chain is the real one: Chromium → host page (sandboxed iframe, postMessage JSON-RPC) →
/relay → SDK Client → `sora-mcp serve --transport http` (a child process) → the emulator.
A screenshot is kept under $SORA_MCP_ARTIFACTS (default: artifacts/) for people to look at;
nothing is compared with a golden image.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import pytest
from PIL import Image

from apps_host import AppsHost, apps_client, launch_options
from procs import child_env, serving

playwright_sync = pytest.importorskip("playwright.sync_api")

ARTIFACTS = Path(os.environ.get("SORA_MCP_ARTIFACTS", Path(__file__).parents[1] / "artifacts"))
TIMEOUT_MS = 30_000


async def _seed(url: str) -> dict[str, Any]:
    """Make a small lineage through the real server: an original, its extension, an edit of it."""
    async with apps_client(url) as client:
        made = await client.call_tool(
            "generate", {"prompt": "A red kite over green hills", "wait_seconds": 60}
        )
        original = made.structured_content["videos"][0]
        extended = await client.call_tool(
            "extend", {"video_id": original["id"], "prompt": "The kite climbs higher", "wait_seconds": 60}
        )
        edited = await client.call_tool(
            "edit", {"video_id": original["id"], "prompt": "Make the sky orange", "wait_seconds": 60}
        )
        listed = await client.call_tool("list_videos", {})
    return {
        "original": original,
        "extension": extended.structured_content["video"],
        "edit": edited.structured_content["video"],
        "videos": listed.structured_content["videos"],
    }


@pytest.fixture
def studio_server(tmp_path: Path) -> Any:
    # Confirm above $0.50: the seeded 4 s clips ($0.40) go through; an 8 s extension asks.
    env = child_env(tmp_path, speed=2000, SORA_MCP_CONFIRM_ABOVE_USD="0.5")
    with serving(["serve", "--transport", "http"], env) as port:
        url = f"http://127.0.0.1:{port}/mcp"
        yield url, anyio.run(_seed, url)


def test_the_studio_shows_the_registry_plays_the_clip_and_calls_tools_through_the_host(
    studio_server: Any, tmp_path: Path
) -> None:
    url, seeded = studio_server
    options = launch_options()
    host = AppsHost(url)
    with host.running(), playwright_sync.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), viewport={"width": 1000, "height": 900}, **options
        )
        page = context.new_page()
        network: list[tuple[str, bool]] = []  # (url, sent by the app's iframe)
        page.on(
            "request",
            lambda r: (
                network.append((r.url, r.frame.parent_frame is not None))
                if r.url.startswith(("http:", "https:", "ws:", "wss:"))
                else None
            ),
        )
        console: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"error: {e}"))
        page.goto(host.url)
        page.wait_for_function(
            "document.getElementById('status').textContent === 'ready'", timeout=TIMEOUT_MS
        )
        app = page.frame_locator("#app")
        expect = playwright_sync.expect

        # The gallery is the registry: every video, with its status and lineage.
        cards = app.locator("#gallery .card")
        expect(cards).to_have_count(len(seeded["videos"]), timeout=TIMEOUT_MS)
        shown = {
            card.get_attribute("data-video-id"): card.get_attribute("data-status") for card in cards.all()
        }
        assert shown == {v["id"]: "completed" for v in seeded["videos"]}
        extension_card = app.locator(f'#gallery .card[data-video-id="{seeded["extension"]["id"]}"]')
        expect(extension_card).to_contain_text(f"extension of {seeded['original']['id'][:14]}")
        try:
            expect(app.locator("#gallery .card img")).to_have_count(3, timeout=TIMEOUT_MS)
        except AssertionError as exc:
            log = page.evaluate("hostLog")
            note = app.locator("#player-note").text_content()
            files = [v["files"] for v in seeded["videos"]]
            raise AssertionError(
                f"{exc}\n{host.report()}\nthe view asked: {log}\nconsole: {console}\nnote: {note}\nfiles: {files}"
            ) from None
        total = sum(v["estimated_cost_usd"] for v in seeded["videos"])
        expect(app.locator("#spend")).to_have_text(f"Spent so far: ${total:.2f} (estimate, 3 clips)")

        # The selected clip plays: its bytes came through the bridge, not the network.
        view = page.frame_locator("#app").locator("#player")
        view.wait_for(state="visible", timeout=TIMEOUT_MS)
        frame = next(f for f in page.frames if f.parent_frame is not None)
        frame.wait_for_function(
            "document.getElementById('player').readyState >= 2", timeout=TIMEOUT_MS, polling=100
        )
        playing = frame.evaluate(
            "(() => { const v = document.getElementById('player');"
            " return {duration: v.duration, src: v.currentSrc.split(':')[0], width: v.videoWidth}; })()"
        )
        newest = seeded["videos"][0]
        assert playing["src"] in ("blob", "data") and playing["width"] > 0
        assert abs(playing["duration"] - newest["seconds"]) < 0.5
        # Only the host page talks to a server; the sandboxed view made no request at all.
        assert {u.split("?")[0] for u, _ in network} <= {
            host.url,
            f"{host.url}relay",
            f"{host.url}favicon.ico",
        }
        assert [u for u, from_app in network if from_app] == []

        # A button calls a tool through the host, and the view shows the answer. Buttons are pressed
        # from the keyboard: the host resizes the frame as the view grows, which can move a button
        # between Playwright's stability check and a mouse click.
        app.locator("#download").press("Enter")
        expect(app.locator("#notice")).to_contain_text("Saved:", timeout=TIMEOUT_MS)
        assert [c["arguments"] for c in host.tool_calls("download")] == [
            {"video_id": newest["id"], "variant": "all"}
        ]
        assert any(e["method"] == "tools/call" and e["name"] == "download" for e in page.evaluate("hostLog"))

        assert host.failures == []

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "studio.png"
        page.screenshot(path=str(shot), full_page=True)
        with Image.open(shot) as image:
            assert image.format == "PNG" and image.width >= 960
        context.close()


def test_the_studio_opened_by_get_video_selects_that_video_and_extends_it_after_a_confirmation(
    studio_server: Any, tmp_path: Path
) -> None:
    url, seeded = studio_server
    options = launch_options()
    host = AppsHost(url)
    original = seeded["original"]["id"]
    args = quote(json.dumps({"video_id": original}))
    with host.running(), playwright_sync.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(str(tmp_path / "profile"), **options)
        page = context.new_page()
        page.goto(f"{host.url}?tool=get_video&args={args}")
        app = page.frame_locator("#app")
        expect = playwright_sync.expect
        expect(app.locator("#title")).to_have_text(original, timeout=TIMEOUT_MS)
        # Lineage from the original: both videos made from it, each a button.
        expect(app.locator("#lineage [data-child]")).to_have_count(2, timeout=TIMEOUT_MS)

        app.locator("#extend-prompt").fill("The kite loops once")
        app.locator("#extend-seconds").select_option("8")
        app.locator("#extend").press("Enter")
        # $0.80 is above the threshold and this host has no elicitation: the view shows the
        # quote, and only the user's click here repeats the call with the token.
        expect(app.locator("#quote")).to_contain_text("about $0.80", timeout=TIMEOUT_MS)
        expect(app.locator("#gallery .card")).to_have_count(3)
        asked = {"video_id": original, "prompt": "The kite loops once", "seconds": 8}
        assert [c["arguments"] for c in host.tool_calls("extend")] == [asked]
        app.locator("#confirm-yes").press("Enter")
        expect(app.locator("#notice")).to_contain_text("Started", timeout=TIMEOUT_MS)
        expect(app.locator("#gallery .card")).to_have_count(4, timeout=TIMEOUT_MS)
        _quoted, confirmed = host.tool_calls("extend")
        assert confirmed["arguments"] == {**asked, "confirm_token": confirmed["arguments"]["confirm_token"]}
        assert confirmed["arguments"]["confirm_token"].startswith("cfm_")
        # The new extension is selected, and the view follows it until it completes.
        expect(app.locator("#gallery .card[aria-current='true']")).to_have_attribute(
            "data-status", "completed", timeout=TIMEOUT_MS
        )
        context.close()
