"""Transport hygiene with real processes: on stdio, stdout carries nothing but JSON-RPC; and a
canary API key never appears in stdout, stderr, tool results, resources or the registry, across
auth errors, server errors, connection errors and bad paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from procs import child_env, free_port, serving, stdio_server

CANARY = "sk-canary-7f3a9c1e5b2d4f60a8e7c9b1d3f5a7e9"


def test_stdout_is_only_json_rpc_through_a_whole_generation(tmp_path: Path) -> None:
    with stdio_server(child_env(tmp_path, speed=400), tmp_path / "stderr.log") as server:
        started = server.call("generate", {"prompt": "ink drops bloom in water", "size": "1280x720"})
        video_id = started["videos"][0]["id"]
        done = server.call("get_video", {"video_id": video_id, "wait_seconds": 60}, timeout=60)
        assert done["video"]["status"] == "completed"
        assert server.call_raw("get_video", {"video_id": "no such id"})["isError"]  # logged by the SDK
        assert server.call_raw("generate", {"prompt": "x", "image": "/etc/passwd"})["isError"]
    assert server.stdout_lines
    for line in server.stdout_lines:
        assert json.loads(line)["jsonrpc"] == "2.0"


def _scan_for_canary(*texts: str | bytes) -> None:
    for text in texts:
        data = text.encode() if isinstance(text, str) else text
        assert CANARY.encode() not in data
        assert CANARY[8:24].encode() not in data  # not even a recognisable part of it


@pytest.mark.parametrize("backend", ["wrong-key", "server-errors", "nothing-listening"])
def test_a_canary_api_key_never_leaks(tmp_path: Path, backend: str) -> None:
    emulator_env = child_env(tmp_path / "backend")
    args = ["emulator", "--api-key", "sk-the-real-one"]
    if backend == "server-errors":
        args = ["emulator"]
        emulator_env["SORA_MCP_EMULATOR_FAULTS"] = "500x50,503x50"
    log = tmp_path / "stderr.log"
    with serving(args, emulator_env) as port:
        if backend == "nothing-listening":
            port = free_port()
        env = child_env(
            tmp_path / "client",
            OPENAI_API_KEY=CANARY,
            OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1",
            SORA_MCP_TIMEOUT="5",
        )
        with stdio_server(env, log) as server:
            results = [
                server.call_raw("generate", {"prompt": "a canary in a coal mine"}),
                server.call_raw("get_video", {"video_id": "video_123"}),
                server.call_raw("download", {"video_id": "video_123"}),
                server.call_raw("list_videos", {}),
                server.call_raw("generate", {"prompt": "x", "image": "/tmp/elsewhere.png"}),
                server.request("resources/read", {"uri": "sora://capabilities"}),
            ]
    assert any(r.get("isError") for r in results)
    _scan_for_canary(b"\n".join(server.stdout_lines), log.read_bytes(), json.dumps(results))
    registry_files = [p for p in (tmp_path / "client" / "home").rglob("*") if p.is_file()]
    assert registry_files
    for path in registry_files:
        _scan_for_canary(path.read_bytes())
