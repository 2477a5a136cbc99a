"""The people's commands, driven as a person would: the real `sora-mcp` console script in a child
process, against the built-in emulator at a high speed, with its folders in tmp_path. The MP4s
are checked with PyAV, and the registry is shown to be the server's own, through a real MCP client
talking to `sora-mcp serve` over stdio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from helpers import structured
from procs import child_env
from sora_mcp.media.video import probe

SCRIPT = Path(sys.executable).parent / ("sora-mcp.exe" if sys.platform == "win32" else "sora-mcp")


def sora(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.is_file(), f"the console script is not installed at {SCRIPT}"
    return subprocess.run(
        [str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def sora_json(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = sora(env, *args, "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return child_env(tmp_path, speed=400, SORA_MCP_BACKEND="emulator")


def test_generate_follows_the_job_with_a_progress_bar_and_leaves_a_checked_mp4(
    env: dict[str, str], tmp_path: Path
) -> None:
    done = sora(env, "generate", "A red paper boat in a gutter, dawn", "--size", "1280x720", "--seconds", "8")
    assert done.returncode == 0, done.stderr
    assert "100%" in done.stderr  # the bar, on stderr
    (video_line, path_line) = done.stdout.splitlines()
    assert " completed " in video_line
    path = Path(path_line.strip())
    assert path.parent == tmp_path / "out"
    info = probe(path)
    assert (info.width, info.height, round(info.seconds, 2)) == (1280, 720, 8.0)


def test_list_and_show_read_the_registry_with_lineage_after_extend_and_edit(env: dict[str, str]) -> None:
    (source,) = sora_json(env, "generate", "A kite over a beach", "--size", "1280x720")["videos"]
    vid = source["id"]
    extended = sora_json(env, "extend", vid, "the kite loops once", "--seconds", "4")
    assert extended["video"]["status"] == "completed"
    assert (extended["extensions_left"], extended["seconds_left"]) == (5, 112)
    assert round(probe(Path(extended["video"]["files"]["video"])).seconds, 2) == 8.0
    edited = sora_json(env, "edit", vid, "make the kite green; keep the framing")
    assert edited["relation"] == "edit"
    assert edited["video"]["parent_id"] == vid

    shown = sora_json(env, "show", vid)
    assert shown["video"]["status"] == "completed"
    assert {(c["id"], c["relation"]) for c in shown["children"]} == {
        (extended["video"]["id"], "extension"),
        (edited["video"]["id"], "edit"),
    }
    listed = sora_json(env, "list", "--parent", vid)
    assert {v["id"] for v in listed["videos"]} == {extended["video"]["id"], edited["video"]["id"]}
    table = sora(env, "list")
    assert table.returncode == 0
    assert [line.split()[0] for line in table.stdout.splitlines()] == [
        edited["video"]["id"],
        extended["video"]["id"],
        vid,
    ]


@pytest.mark.anyio
async def test_the_cli_and_the_mcp_server_share_one_registry(env: dict[str, str]) -> None:
    (made_here,) = sora_json(env, "generate", "A lighthouse at dusk", "--size", "1280x720")["videos"]
    params = StdioServerParameters(command=str(SCRIPT), args=["serve"], env=env)
    async with Client(params, read_timeout_seconds=120) as client:
        listed = structured(await client.call_tool("list_videos", {}))
        assert [v["id"] for v in listed["videos"]] == [made_here["id"]]
        started = structured(
            await client.call_tool(
                "generate", {"prompt": "A harbour at noon", "size": "1280x720", "wait_seconds": 30}
            )
        )
        (made_there,) = started["videos"]
        assert made_there["status"] == "completed"

    listing = sora_json(env, "list")
    assert [v["id"] for v in listing["videos"]] == [made_there["id"], made_here["id"]]
    shown = sora_json(env, "show", made_there["id"])
    assert probe(Path(shown["video"]["files"]["video"])).width == 1280


def test_batch_from_prompts_from_a_jsonl_file_anywhere_and_a_dry_run(
    env: dict[str, str], tmp_path: Path
) -> None:
    dry = sora(env, "batch", "--prompt", "a teal kite", "--prompt", "a red kite", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "2 item(s)" in dry.stdout
    assert sora_json(env, "list")["count"] == 0  # nothing was sent

    done = sora_json(env, "batch", "--prompt", "a teal kite", "--prompt", "a red kite", "--mode", "direct")
    assert done["mode"] == "direct"
    assert done["totals"] == {"completed": 2}
    for item in done["items"].values():
        assert probe(Path(item["files"]["video"])).seconds == pytest.approx(4.0, abs=0.01)

    # A file the person names is read where it is, outside the folders a model may name.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    lines = [
        {"custom_id": f"ad-{c}", "method": "POST", "url": "/v1/videos", "body": {"prompt": f"a {c} boat"}}
        for c in ("red", "blue")
    ]
    (elsewhere / "ads.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    native = sora_json(env, "batch", str(elsewhere / "ads.jsonl"))
    assert native["mode"] == "native"
    assert set(native["items"]) == {"ad-red", "ad-blue"}
    assert native["totals"] == {"completed": 2}
    assert sora_json(env, "list", "--batch", native["batch_id"])["count"] == 2


def test_bad_input_is_refused_before_anything_is_sent(env: dict[str, str]) -> None:
    done = sora(env, "generate", "A boat", "--size", "999x999")
    assert done.returncode == 1
    assert done.stdout == ""
    assert "999x999" in done.stderr
    assert "Traceback" not in done.stderr
    assert sora_json(env, "list")["count"] == 0
    missing = sora(env, "show", "video_nope")
    assert missing.returncode == 1
    assert "video_nope" in missing.stderr
    neither = sora(env, "batch")
    assert neither.returncode == 1
    assert "--prompt" in neither.stderr


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="the viewer is xdg-open on Linux")
def test_open_hands_the_downloaded_file_to_the_system_viewer(env: dict[str, str], tmp_path: Path) -> None:
    (video,) = sora_json(env, "generate", "A boat", "--size", "1280x720")["videos"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    seen = tmp_path / "opened.txt"
    viewer = bin_dir / "xdg-open"
    viewer.write_text(f'#!/bin/sh\nprintf "%s" "$1" > {seen}\n')
    viewer.chmod(0o755)
    env = {**env, "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"}

    done = sora(env, "open", video["id"], "--variant", "thumbnail")
    assert done.returncode == 0, done.stderr
    opened = Path(seen.read_text())
    assert done.stdout.strip() == str(opened)
    assert opened.name.endswith(".webp")
    assert opened.is_file()
