"""Transport hygiene with real processes: on stdio, stdout carries nothing but JSON-RPC; and a
canary API key never appears in stdout, stderr, tool results, resources or the registry, across
auth errors, server errors, connection errors and bad paths."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from procs import child_env, free_port, serving

CANARY = "sk-canary-7f3a9c1e5b2d4f60a8e7c9b1d3f5a7e9"


class RawStdioSession:
    """Drive `sora-mcp serve` over raw stdin/stdout, keeping every byte it writes."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sora_mcp", "serve"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.stdout_lines: list[bytes] = []
        self._next_id = 0

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._next_id += 1
        self._send({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params or {}})
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            assert line, "server closed stdout"
            self.stdout_lines.append(line)
            message = json.loads(line)
            if message.get("id") == self._next_id:
                return dict(message)

    def notify(self, method: str) -> None:
        self._send({"jsonrpc": "2.0", "method": method})

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def close(self) -> tuple[bytes, bytes]:
        """Close stdin (the client is gone), let the server exit, return all it wrote."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=20)
        self.stdout_lines.extend(self.proc.stdout.read().splitlines(keepends=True))
        err = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return b"".join(self.stdout_lines), err


@pytest.fixture
def session_factory() -> Iterator[list[RawStdioSession]]:
    sessions: list[RawStdioSession] = []
    yield sessions
    for session in sessions:
        if session.proc.poll() is None:
            session.proc.kill()
            session.proc.wait()
        for pipe in (session.proc.stdin, session.proc.stdout, session.proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()


def _start(env: dict[str, str], sessions: list[RawStdioSession]) -> RawStdioSession:
    session = RawStdioSession(env)
    sessions.append(session)
    reply = session.request(
        "initialize",
        {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
    )
    assert "result" in reply
    session.notify("notifications/initialized")
    return session


def _call(session: RawStdioSession, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    reply = session.request("tools/call", {"name": tool, "arguments": arguments})
    return dict(reply["result"])


def test_stdout_is_only_json_rpc_through_a_whole_generation(
    tmp_path: Path, session_factory: list[RawStdioSession]
) -> None:
    session = _start(child_env(tmp_path, speed=400), session_factory)
    started = _call(session, "generate", {"prompt": "ink drops bloom in water", "size": "1280x720"})
    video_id = started["structuredContent"]["videos"][0]["id"]
    done = _call(session, "get_video", {"video_id": video_id, "wait_seconds": 60})
    assert done["structuredContent"]["video"]["status"] == "completed"
    _call(session, "get_video", {"video_id": "no such id"})  # a tool error, logged by the SDK
    _call(session, "generate", {"prompt": "x", "image": "/etc/passwd"})
    stdout, _stderr = session.close()
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert json.loads(line)["jsonrpc"] == "2.0"


def _scan_for_canary(*texts: str | bytes) -> None:
    for text in texts:
        data = text.encode() if isinstance(text, str) else text
        assert CANARY.encode() not in data
        assert CANARY[8:24].encode() not in data  # not even a recognisable part of it


@pytest.mark.parametrize("backend", ["wrong-key", "server-errors", "nothing-listening"])
def test_a_canary_api_key_never_leaks(
    tmp_path: Path, session_factory: list[RawStdioSession], backend: str
) -> None:
    emulator_env = child_env(tmp_path / "backend")
    args = ["emulator", "--api-key", "sk-the-real-one"]
    if backend == "server-errors":
        args = ["emulator"]
        emulator_env["SORA_EMULATOR_FAULTS"] = "500x50,503x50"
    with serving(args, emulator_env) as port:
        if backend == "nothing-listening":
            port = free_port()
        env = child_env(
            tmp_path / "client",
            OPENAI_API_KEY=CANARY,
            OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1",
            SORA_MCP_TIMEOUT="5",
        )
        session = _start(env, session_factory)
        results = [
            _call(session, "generate", {"prompt": "a canary in a coal mine"}),
            _call(session, "get_video", {"video_id": "video_123"}),
            _call(session, "download", {"video_id": "video_123"}),
            _call(session, "list_videos", {}),
            _call(session, "generate", {"prompt": "x", "image": "/tmp/elsewhere.png"}),
            session.request("resources/read", {"uri": "sora://capabilities"}),
        ]
        stdout, stderr = session.close()
    assert any(r.get("isError") for r in results)
    _scan_for_canary(stdout, stderr, json.dumps(results))
    registry_files = [p for p in (tmp_path / "client" / "home").rglob("*") if p.is_file()]
    assert registry_files
    for path in registry_files:
        _scan_for_canary(path.read_bytes())
