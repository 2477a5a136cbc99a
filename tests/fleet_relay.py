"""A counting, fault-injecting HTTP relay between real sora-mcp processes and the backend: it
counts every request (and every billable `POST …/videos` apart; per server, with lanes), and can
delay a billable one, drop its answer after the backend processed it (the connection is closed
with no reply) or answer 5xx without forwarding.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2

LANE = "/lane-"
"""A path starting `/lane-<name>/` is forwarded without that part: servers given base URLs on
different lanes of one relay share the backend's host (so its label in the registry) and are
counted apart."""
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"}


@dataclass
class Faults:
    drop: float = 0.0
    """Share of billable POSTs forwarded to the backend whose answer never reaches the client."""
    server_error: float = 0.0
    """Share of billable POSTs answered 503 without being forwarded."""
    delay: float = 0.0
    """Seconds every billable POST is held before it is forwarded."""
    seed: int = 12


@dataclass
class Counts:
    creates: int = 0
    """Billable POSTs received from the servers."""
    forwarded: int = 0
    dropped: int = 0
    server_errors: int = 0
    prompts: Counter[str] = field(default_factory=Counter)
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Every request forwarded or answered: (method, path with its query)."""


def _billable(method: str, path: str) -> bool:
    return method == "POST" and path.rstrip("/").endswith("/videos")


@contextmanager
def relay(upstream: str, given: Faults | None = None) -> Iterator[tuple[str, Counts]]:
    """Serve the relay on a free loopback port: (its base URL, its live counts)."""
    faults = given or Faults()
    counts = Counts()
    lock = threading.Lock()
    rng = random.Random(faults.seed)
    base = upstream.rstrip("/")
    prefix = "/" + base.split("/", 3)[3] if base.count("/") >= 3 else ""
    http = httpx2.Client(timeout=120)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            return None

        def _relay(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path
            fate = "forward"
            with lock:
                counts.requests[(self.command, path)] += 1
            if path.startswith(LANE):  # counted with its lane, forwarded without it
                path = "/" + path[1:].partition("/")[2]
            if _billable(self.command, path.split("?")[0]):
                with lock:
                    counts.creates += 1
                    roll = rng.random()
                    fate = (
                        "error"
                        if roll < faults.server_error
                        else "drop"
                        if roll < faults.server_error + faults.drop
                        else "forward"
                    )
                if faults.delay:
                    time.sleep(faults.delay)
                if fate == "error":
                    with lock:
                        counts.server_errors += 1
                    self._answer(503, b'{"error": {"message": "injected", "type": "server_error"}}')
                    return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            target = base + path[len(prefix) :] if path.startswith(prefix) else base + path
            answer = http.request(self.command, target, content=body, headers=headers)
            if _billable(self.command, path.split("?")[0]):
                with lock:
                    counts.forwarded += 1
                    if answer.status_code < 300:
                        counts.prompts[str(answer.json().get("prompt"))] += 1
                if fate == "drop":
                    with lock:
                        counts.dropped += 1
                    self.close_connection = True
                    self.connection.close()
                    return
            self._answer(answer.status_code, answer.content, answer.headers.get("content-type"))

        def _answer(self, status: int, content: bytes, content_type: str | None = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type or "application/octet-stream")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_DELETE = _relay

    with _serving(Handler) as port:
        try:
            yield f"http://127.0.0.1:{port}{prefix}", counts
        finally:
            http.close()


@contextmanager
def balancer(first: str, second: str) -> Iterator[tuple[str, Counter[str]]]:
    """A load balancer in front of two MCP servers that sends every request to `first` except a
    call echoing `requestState` (the answer to a question the server asked midway), which goes
    to `second`: the question is asked on one replica and answered on another. Yields its URL
    and how many requests each upstream got."""
    served: Counter[str] = Counter()
    lock = threading.Lock()
    http = httpx2.Client(timeout=120)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            return None

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            upstream = second if b'"requestState"' in body else first
            with lock:
                served[upstream] += 1
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            answer = http.post(upstream, content=body, headers=headers)
            self.send_response(answer.status_code)
            for key, value in answer.headers.items():
                if key.lower() not in _HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

    with _serving(Handler) as port:
        try:
            yield f"http://127.0.0.1:{port}/mcp", served
        finally:
            http.close()


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """Serve `handler` on a free loopback port, in threads, until the block ends; yields the port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
