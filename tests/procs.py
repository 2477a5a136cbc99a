"""Helpers to run real `python -m sora_mcp …` child processes in tests."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def child_env(tmp_path: Path, speed: float = 400, **extra: str) -> dict[str, str]:
    """The test process's environment without real credentials, pointed at `tmp_path`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SORA_"))}
    env.update(
        SORA_MCP_HOME=str(tmp_path / "home"),
        SORA_MCP_OUTPUT_DIR=str(tmp_path / "out"),
        SORA_MCP_EMULATOR_SPEED=str(speed),
    )
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    """Wait for a real child process to bind its port (bounded: about 10 s)."""
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}") from None
            time.sleep(0.05)  # a real process binding a socket; not a timing assertion
    raise RuntimeError(f"nothing listening on port {port}")


@contextmanager
def serving(args: list[str], env: Mapping[str, str]) -> Iterator[int]:
    """Run `python -m sora_mcp ARGS --port N` until the block ends; yields N."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sora_mcp", *args, "--port", str(port)],
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class StdioServer:
    """A real `python -m sora_mcp serve` on stdio, driven with raw JSON-RPC lines.

    Every read has a deadline, so a server that hangs fails the test instead of hanging it.
    Its stderr goes to `log` (read it when a test fails). `proc` is there to kill it.
    """

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sora_mcp", "serve"],
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self._buffer = b""
        self._next_id = 0
        self.stdout_lines: list[bytes] = []
        """Every line the server wrote to stdout, in order (closing adds what was left unread)."""

    def initialize(self, timeout: float = 30.0) -> None:
        reply = self.request(
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "1"},
            },
            timeout=timeout,
        )
        assert "result" in reply, reply
        self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def call(self, tool: str, arguments: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        """The `structuredContent` of a successful tool call (fails the test on a tool error)."""
        result = self.call_raw(tool, arguments, timeout)
        assert not result.get("isError"), result
        return dict(result["structuredContent"])

    def call_raw(self, tool: str, arguments: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        """The whole `tools/call` result, tool errors included."""
        reply = self.request("tools/call", {"name": tool, "arguments": arguments}, timeout=timeout)
        return dict(reply["result"])

    def request(self, method: str, params: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        self._next_id += 1
        self._send({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self._readline(deadline))
            if message.get("id") == self._next_id:  # notifications (progress, logs) are skipped
                return dict(message)

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind runs in the server."""
        self.proc.kill()
        self.proc.wait(timeout=10)

    def close(self) -> None:
        """Close stdin (the client is gone) and let the server exit; kill it if it does not."""
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            rest = self._buffer + self.proc.stdout.read()
            self.stdout_lines.extend(line for line in rest.splitlines() if line.strip())
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()
        self._log.close()

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def _readline(self, deadline: float) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the server did not answer in time")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise EOFError(f"the server closed stdout (exit code {self.proc.poll()})")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        self.stdout_lines.append(line)
        return line


@contextmanager
def stdio_server(env: Mapping[str, str], log: Path) -> Iterator[StdioServer]:
    """A started and initialized `StdioServer`, closed (or killed) when the block ends."""
    server = StdioServer(env, log)
    try:
        server.initialize()
        yield server
    finally:
        server.close()


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `check` until it holds, for real processes doing real work (bounded by `timeout`)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting after {timeout} s for {what}")
        time.sleep(0.1)  # a real process working; not a timing assertion
