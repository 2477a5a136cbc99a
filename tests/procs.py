"""Helpers to run real `python -m sora_mcp …` child processes in tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


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
