"""What the benchmarks share: real child processes, a counting relay, medians.

Every benchmark prints its figures as a ratio against the alternative measured in the same run
(A/B interleaved where it matters), because these machines are noisy: absolute times mean little,
ratios measured side by side mean something.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import uvicorn
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

QUICK = "--quick" in sys.argv


def child_env(home: Path, **extra: str) -> dict[str, str]:
    """This environment without credentials or sora-mcp settings, pointed at `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SORA_"))}
    env.update(SORA_MCP_HOME=str(home / "home"), SORA_MCP_OUTPUT_DIR=str(home / "out"))
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"child exited with {proc.returncode}") from None
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port}")


@contextmanager
def emulator(home: Path, *, speed: float, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """A standalone `sora-mcp emulator` on a free port; yields its base URL (…/v1)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sora_mcp",
            "emulator",
            "--port",
            str(port),
            "--speed",
            str(speed),
            "--root",
            str(home / "emulator"),
        ],
        env=dict(env or child_env(home)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Relay:
    """A counting HTTP relay in front of an upstream base URL, on its own thread and port.

    `counts[(method, kind)]` counts requests by kind (`create`, `status`, `content:<variant>`,
    `list`, `other`). `fault` may answer a request instead of the upstream (return a Response) — used to
    inject 429s into a share of billable POSTs.
    """

    def __init__(self, upstream: str, fault: Callable[[Request, int], Response | None] | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.fault = fault
        self.counts: Counter[tuple[str, str]] = Counter()
        self.posts = 0
        # (time.time(), video id, status) for every status answer relayed: detection latency.
        self.observations: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()
        self._http: httpx2.AsyncClient | None = None  # made on the relay's own event loop
        self.port = free_port()
        config = uvicorn.Config(
            self._app, host="127.0.0.1", port=self.port, log_level="error", lifespan="off", interface="asgi3"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> Relay:
        self._thread.start()
        wait_for_port(self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        path = request.url.path
        kind = _kind(request.method, path)
        if kind == "content":
            kind = f"content:{request.query_params.get('variant', 'video')}"
        with self._lock:
            self.counts[(request.method, kind)] += 1
            if request.method == "POST":
                self.posts += 1
            n = self.posts
        if self.fault is not None and (answer := self.fault(request, n)) is not None:
            await answer(scope, receive, send)
            return
        if self._http is None:
            self._http = httpx2.AsyncClient(timeout=httpx2.Timeout(600))
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        url = (
            self.upstream + path.removeprefix("/v1") + (f"?{request.url.query}" if request.url.query else "")
        )
        upstream = await self._http.send(
            self._http.build_request(request.method, url, content=body, headers=headers), stream=True
        )
        out_headers = {
            k: v
            for k, v in upstream.headers.items()
            if k.lower() not in ("content-length", "transfer-encoding", "content-encoding")
        }
        if kind == "status":
            data = await upstream.aread()
            await upstream.aclose()
            try:
                video = json.loads(data)
                with self._lock:
                    self.observations.append((time.time(), str(video.get("id")), str(video.get("status"))))
            except ValueError:
                pass
            await Response(data, status_code=upstream.status_code, headers=out_headers)(scope, receive, send)
            return

        async def relay_body() -> Any:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            finally:
                await upstream.aclose()

        await StreamingResponse(relay_body(), status_code=upstream.status_code, headers=out_headers)(
            scope, receive, send
        )


def _kind(method: str, path: str) -> str:
    parts = [p for p in path.split("/") if p]
    if parts[:2] != ["v1", "videos"]:
        return "other"
    if len(parts) == 2:
        return "create" if method == "POST" else "list"
    if parts[-1] == "content":
        return "content"
    if len(parts) == 3 and method == "GET":
        return "status"
    return "other"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def report(title: str, rows: list[tuple[str, str]]) -> None:
    """Print one benchmark's figures as an aligned block (the README's table is made from these)."""
    print(f"\n## {title}" + (" (quick mode: figures are a smoke test only)" if QUICK else ""))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key.ljust(width)}  {value}")
    sys.stdout.flush()
