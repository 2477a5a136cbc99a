"""A fresh `sora-mcp serve` answers `initialize` and `tools/list` without loading PyAV, Pillow or
numpy and without building the emulator: they load on first use, and first use still works.
(Measured in `bench/bench_server.py`: they were about half of the start-up time.)"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from helpers import structured
from procs import child_env

pytestmark = pytest.mark.anyio

HERE = Path(__file__).resolve().parent


def _loaded(log: Path) -> set[str]:
    return set(log.read_text(encoding="utf-8").split()) if log.exists() else set()


async def test_a_fresh_server_lists_its_tools_before_loading_media_code_and_loads_it_on_first_use(
    tmp_path: Path,
) -> None:
    log = tmp_path / "imports.txt"
    params = StdioServerParameters(
        command=sys.executable,
        args=[str(HERE / "serve_noting_imports.py"), str(log), "serve"],
        env=child_env(tmp_path),
    )
    with anyio.fail_after(60):
        async with Client(params) as client:
            listed = await client.list_tools()
            loaded_at_start = _loaded(log)
            started = structured(
                await client.call_tool("generate", {"prompt": "a kite over dunes", "size": "1280x720"})
            )
            done = structured(
                await client.call_tool(
                    "get_video", {"video_id": started["videos"][0]["id"], "wait_seconds": 60}
                )
            )
            loaded_after_use = _loaded(log)
    assert "generate" in {tool.name for tool in listed.tools}
    assert loaded_at_start == set()
    assert done["video"]["status"] == "completed"
    assert Path(done["video"]["files"]["video"]).stat().st_size > 0
    assert loaded_after_use == {"av", "PIL", "numpy", "sora_mcp.emulator.app"}  # not the CLI's commands
