"""A counting relay: a real HTTP server between a gateway and its upstream (the emulator).

It forwards every request unchanged and records `(method, path)` of each, so a test can count
what really reached the upstream — e.g. "one client POST became exactly one upstream POST".
It can also answer like a failing upstream: `fail_next(status, path=...)` makes the next
matching requests answer `status` with the Videos error envelope *without* forwarding them,
which is what a gateway sees when the provider is overloaded (and what makes a gateway retry).

The relay runs uvicorn in a daemon thread of the test process, so its counts are plain
attributes; `stop()` ends it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from procs import free_port

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "te", "upgrade"}


@dataclass
class _Failure:
    status: int
    times: int
    method: str
    path: str
    retry_after: int | None


class CountingRelay:
    """Forwards to `upstream` (e.g. `http://127.0.0.1:8090`) and counts what passed."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = free_port()
        self.requests: list[tuple[str, str]] = []
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- what tests use --------------------------------------------------------------------

    def count(self, method: str, path_suffix: str = "") -> int:
        """Requests seen with this method whose path ends with `path_suffix`."""
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and p.endswith(path_suffix))

    def posts(self) -> dict[str, int]:
        """Upstream POSTs per path."""
        counts: dict[str, int] = {}
        with self._lock:
            for method, path in self.requests:
                if method == "POST":
                    counts[path] = counts.get(path, 0) + 1
        return counts

    def mark(self) -> int:
        """A position in the request log; `since(mark)` gives what came after it."""
        with self._lock:
            return len(self.requests)

    def since(self, mark: int) -> list[tuple[str, str]]:
        with self._lock:
            return list(self.requests[mark:])

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        method: str = "POST",
        path: str = "",
        retry_after: int | None = None,
    ) -> None:
        """Answer the next `times` requests of `method` whose path ends with `path` with
        `status`, as a failing upstream would; they are counted but not forwarded."""
        with self._lock:
            self._failures.append(_Failure(status, times, method, path, retry_after))

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    # -- the server ------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> CountingRelay:
        config = uvicorn.Config(
            self._app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            interface="asgi3",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="counting-relay", daemon=True)
        self._thread.start()
        _wait_until(lambda: self._server is not None and self._server.started, timeout, "the relay to start")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        with self._lock:
            self.requests.append((method, path))
            for index, failure in enumerate(self._failures):
                if failure.method == method and path.endswith(failure.path):
                    failure.times -= 1
                    if failure.times <= 0:
                        del self._failures[index]
                    return failure
        return None

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        failure = self._take_failure(request.method, request.url.path)
        if failure is not None:
            headers = {"retry-after": str(failure.retry_after)} if failure.retry_after is not None else {}
            error = {"message": f"Relay-injected upstream HTTP {failure.status}.", "type": "server_error"}
            answer: Response = JSONResponse({"error": error}, status_code=failure.status, headers=headers)
            await answer(scope, receive, send)
            return
        answer = await self._forward(request)
        await answer(scope, receive, send)

    async def _forward(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        url = f"{self.upstream}{request.url.path}"
        if request.url.query:
            url += f"?{request.url.query}"
        body = await request.body()
        async with httpx2.AsyncClient(timeout=60.0) as client:
            upstream = await client.request(request.method, url, headers=headers, content=body)
        kept: dict[str, Any] = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
        kept.pop("content-encoding", None)
        return Response(upstream.content, status_code=upstream.status_code, headers=kept)


def _wait_until(ready: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)
