"""SIGKILL during downloads (issue 8, finding 6): a video whose completion was saved but whose
file was not is fetched by the next server without being asked, and the temporary files the
killed server left are swept — over several rounds, not one completed record without a playable
file."""

from __future__ import annotations

import http.server
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2

from procs import StdioServer, child_env, free_port, serving, stdio_server, wait_until
from sora_mcp.media.video import probe
from sora_mcp.registry.records import VideoRecord
from sora_mcp.registry.store import Registry


class DripProxy:
    """A real HTTP relay between a server and the standalone emulator; while `drip` is set,
    MP4 downloads trickle (1 KiB every 0.2 s), so a server killed then is mid-download."""

    def __init__(self, upstream: str) -> None:
        self.drip = threading.Event()
        self.port = free_port()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def _relay(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                with httpx2.Client(base_url=upstream, timeout=30) as http:
                    answer = http.request(self.command, self.path, content=body, headers=headers)
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(key, value)
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                slow = proxy.drip.is_set() and self.path.split("?")[0].endswith("/content")
                step = 1024 if slow else len(answer.content) or 1
                try:
                    for start in range(0, len(answer.content), step):
                        self.wfile.write(answer.content[start : start + step])
                        self.wfile.flush()
                        if slow:
                            time.sleep(0.2)  # the trickle itself, in the relay's own thread
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_DELETE = _relay

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @contextmanager
    def running(self) -> Iterator[str]:
        self.thread.start()
        try:
            yield f"http://127.0.0.1:{self.port}/v1"
        finally:
            self.server.shutdown()
            self.server.server_close()


def videos(home: Path) -> list[VideoRecord]:
    with Registry.open(home / "registry") as registry:
        return registry.list_videos(limit=1000)


def playable(record: VideoRecord) -> bool:
    path = Path(record.files.get("video", "/nonexistent"))
    if not path.is_file():
        return False
    try:
        return abs(probe(path).seconds - record.seconds) < 0.5
    except ValueError:
        return False


def ask_without_reading(server: StdioServer, n: int, video_id: str) -> None:
    server._send(
        {
            "jsonrpc": "2.0",
            "id": 10_000 + n,
            "method": "tools/call",
            "params": {"name": "get_video", "arguments": {"video_id": video_id, "wait_seconds": 120}},
        }
    )


def test_sigkill_rounds_leave_no_completed_record_without_a_playable_file(tmp_path: Path) -> None:
    emulator_env = child_env(tmp_path, speed=40)
    with serving(["emulator", "--root", str(tmp_path / "emulator")], emulator_env) as port:
        proxy = DripProxy(f"http://127.0.0.1:{port}")
        with proxy.running() as base_url:
            env = child_env(
                tmp_path,
                SORA_MCP_BACKEND="remote",
                OPENAI_BASE_URL=base_url,
                OPENAI_API_KEY="sk-test-not-a-real-key-000000",
                SORA_MCP_PROFILE="emulator",
            )
            home, out = Path(env["SORA_MCP_HOME"]), Path(env["SORA_MCP_OUTPUT_DIR"])
            killed_mid_download = 0
            for round_ in range(3):
                proxy.drip.set()
                with stdio_server(env, tmp_path / f"round{round_}.log") as server:
                    ids = []
                    for n in range(2):
                        made = server.call("generate", {"prompt": f"round {round_} shot {n}", "seconds": 4})
                        ids.append(made["videos"][0]["id"])
                    for n, video_id in enumerate(ids):
                        ask_without_reading(server, round_ * 10 + n, video_id)

                    def mid_download(ids: list[str] = ids) -> list[VideoRecord]:
                        return [
                            r for r in videos(home) if r.id in ids and r.status == "completed" and not r.files
                        ]

                    wait_until(
                        lambda: bool(mid_download()) and any(out.glob(".*.part")), 60, "a video mid-download"
                    )
                    killed_mid_download += len(mid_download())
                    server.kill()
                    assert server.proc.returncode == -signal.SIGKILL
            assert killed_mid_download >= 3
            assert any(out.glob(".*.part"))  # what the killed servers left behind

            proxy.drip.clear()
            with stdio_server(env, tmp_path / "last.log"):
                # No tool call: the new server fetches every completed file on its own.
                wait_until(
                    lambda: (
                        all(playable(r) for r in videos(home) if r.status == "completed")
                        and sum(r.status == "completed" for r in videos(home)) == 6
                    ),
                    120,
                    "every completed video downloaded",
                )
                wait_until(lambda: not any(out.glob(".*.part")), 10, "the orphan temporary files swept")

    records = videos(home)
    assert [r for r in records if r.status == "completed" and not playable(r)] == []
    assert len(records) == 6
