"""Property-based tests (hypothesis) of what comes from outside, through the MCP tools.

1. Whatever arguments a model sends to any tool — valid-ish values, wrong types, out-of-range
   numbers, NUL bytes, unicode, path traversal, FIFOs and symlinks out of the output folder,
   private-address URLs, garbage data URLs, very long ids — the answer is a result or a clean
   tool error: never a protocol error, never a crash, never a traceback in the text.
2. The same for plausible arguments while the backend misbehaves: error statuses, dropped
   connections, a timeout after the request was accepted, bodies that are not JSON or not the
   expected shape.

The server runs in memory against the emulator. One server per test, kept open across examples
in a blocking portal (an event loop in a worker thread), so hypothesis's synchronous `@given`
drives the async client without restarting the server for every example. The fake clock only
moves when a wait sleeps, so waits are kept at 0 (3 s under backend faults): jobs mostly stay
queued and little renders beyond one seeded video.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.types import CallToolResult, Tool

from helpers import Rig, png_bytes, structured
from tool_arguments import Json, Strategy, World, arguments_for

TOOLS = (
    "generate",
    "get_video",
    "download",
    "list_videos",
    "extend",
    "edit",
    "create_character",
    "list_characters",
    "delete_video",
    "batch",
    "get_batch",
    "studio_media",
)
EXAMPLES_PER_TOOL = 45
FAULT_EXAMPLES_PER_TOOL = 30
# Real seconds a tool call may stay blocked opening a FIFO before the test releases it and fails.
FIFO_PATIENCE = 20.0

# ---------------------------------------------------------------- a served, seeded server


def _seed_files(out: Path) -> tuple[tuple[str, ...], tuple[Path, ...]]:
    """Files in the output folder a model might name: wrong kinds, links out, a FIFO."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "notes.txt").write_text("not a video\n")
    (out / "fake.mp4").write_text("not an mp4 either\n")
    (out / "picture.png").write_bytes(png_bytes(32, 18))
    (out / "items.jsonl").write_text(
        json.dumps({"custom_id": "one", "method": "POST", "url": "/v1/videos", "body": {"prompt": "a kite"}})
        + "\n"
    )
    (out / "broken.jsonl").write_text('{"custom_id": \n\x00garbage\n[1, 2]\n')
    (out / "latin1.jsonl").write_bytes(b"\xff\xfe\xfa not utf-8\n")
    (out / "folder").mkdir(exist_ok=True)
    (out / "passwd-link.png").symlink_to("/etc/passwd")
    (out / "zero-link.png").symlink_to("/dev/zero")
    # Opening a FIFO for reading blocks until a writer comes: a tool must refuse it, not hang.
    fifos = (out / "pipe.jsonl", out / "pipe.png", out / "pipe.mp4")
    for fifo in fifos:
        os.mkfifo(fifo)
    names = [p.name for p in out.iterdir()]
    return (*names, *(str(out / name) for name in names), str(out / ".." / "home")), fifos


class FaultyBackend(httpx2.AsyncBaseTransport):
    """Forwards to the emulator, except the requests a script names (by their index since the
    script was armed), which fail in the scripted way instead."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.script: dict[int, Json] = {}
        self.seen = 0

    def arm(self, faults: Sequence[tuple[int, Json]]) -> None:
        self.script, self.seen = dict(faults), 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        fault = self.script.get(self.seen)
        self.seen += 1
        if fault is None:
            return await self.inner.handle_async_request(request)
        if isinstance(fault, int):
            envelope = {"error": {"message": "injected", "type": "server_error", "code": None}}
            return httpx2.Response(fault, json=envelope, headers={"retry-after": "1"})
        if fault == "connect":
            raise httpx2.ConnectError("injected", request=request)
        if fault == "protocol":
            raise httpx2.RemoteProtocolError("injected", request=request)
        if fault == "timeout-after-send":
            # The backend acts on the request; only the answer is lost.
            await self.inner.handle_async_request(request)
            raise httpx2.ReadTimeout("injected", request=request)
        bodies = {
            "not-json": b"<html>oops</html>",
            "wrong-shape": b'{"id": 5, "status": ["x"]}',
            "list": b"[]",
        }
        return httpx2.Response(200, content=bodies[fault], headers={"content-type": "application/json"})


BACKEND_FAULTS: Strategy = st.one_of(
    st.sampled_from((400, 401, 403, 404, 409, 410, 422, 429, 500, 502, 503, 504)),
    st.sampled_from(("connect", "protocol", "timeout-after-send", "not-json", "wrong-shape", "list")),
)


class Crashes(logging.Handler):
    """Collects error log records: each one is a crashed tool or crashed background work."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Served:
    portal: BlockingPortal
    client: Client
    world: World
    crashes: Crashes
    backend: FaultyBackend

    def call(self, name: str, arguments: Mapping[str, Json]) -> CallToolResult:
        """Call a tool; a call still blocked on a FIFO after a while is released and fails."""
        fired = threading.Event()

        def release() -> None:
            fired.set()
            for fifo in self.world.fifos:
                # Opening the write end and closing it hands any blocked reader an end of file.
                with suppress(OSError):
                    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

        watchdog = threading.Timer(FIFO_PATIENCE, release)
        watchdog.start()
        try:
            result = self.portal.call(lambda: self.client.call_tool(name, dict(arguments)))
        finally:
            watchdog.cancel()
        assert not fired.is_set(), f"{name} blocked opening a FIFO: {arguments!r}"
        return result

    def tools(self) -> dict[str, Tool]:
        listed = self.portal.call(self.client.list_tools)
        return {tool.name: tool for tool in listed.tools}


@contextmanager
def served(tmp_path: Path) -> Iterator[Served]:
    """A sora-mcp server on the emulator, with one completed video, a character (Pip) made from
    it and one batch already made."""
    rig = Rig(root=tmp_path)
    backend = FaultyBackend(rig.transport)
    rig.transport = backend  # type: ignore[assignment]  # the rig's client reads it at start
    paths, fifos = _seed_files(tmp_path / "out")
    crashes = Crashes()
    # The SDK logs a crashed tool there; sora-mcp logs crashes of its background work here.
    loggers = [logging.getLogger("mcp"), logging.getLogger("sora_mcp")]
    for logger in loggers:
        logger.addHandler(crashes)
    try:
        with (
            start_blocking_portal("asyncio") as portal,
            portal.wrap_async_context_manager(rig.client()) as client,
        ):

            def call(name: str, arguments: dict[str, Json]) -> dict[str, Json]:
                return structured(portal.call(lambda: client.call_tool(name, arguments)))

            started = call("generate", {"prompt": "a paper boat on a pond", "seconds": 4})
            video = started["videos"][0]
            done = call("get_video", {"video_id": video["id"], "wait_seconds": 600})
            assert done["video"]["status"] == "completed"
            call("create_character", {"name": "Pip", "video_id": video["id"], "seconds": 2})
            batch = call("batch", {"requests": [{"prompt": "a lantern at dusk"}], "mode": "native"})
            world = World(
                video_ids=(video["id"], video["local_id"]),
                batch_ids=(batch["batch_id"], batch["backend_batch_id"]),
                paths=paths,
                clips=(done["video"]["files"]["video"],),
                fifos=fifos,
            )
            yield Served(portal, client, world, crashes, backend)
    finally:
        for logger in loggers:
            logger.removeHandler(crashes)


# ---------------------------------------------------------------- the property


def _texts(result: CallToolResult) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def assert_clean(name: str, result: CallToolResult, crashes: Crashes) -> None:
    """A success with structured content, or an error a model can read — never a crash."""
    assert not crashes.records, [r.getMessage() for r in crashes.records]
    text = _texts(result)
    assert "Traceback (most recent call last)" not in text
    assert 'File "' not in text
    if result.is_error:
        # A crash reaches the client as the bare prefix, its own text withheld; anything
        # anticipated says what was wrong after it.
        assert text.strip() != f"Error executing tool {name}"
        assert len(text.strip()) > len(f"Error executing tool {name}: ")
    else:
        assert result.structured_content is not None


@pytest.mark.anyio
async def test_the_properties_cover_every_tool(tmp_path: Path) -> None:
    async with Rig(root=tmp_path).client() as client:
        listed = await client.list_tools()

    assert {tool.name for tool in listed.tools} == set(TOOLS)


@pytest.mark.parametrize("name", TOOLS)
def test_any_arguments_get_a_result_or_a_clean_tool_error_never_a_crash(tmp_path: Path, name: str) -> None:
    with served(tmp_path) as server:
        tool = server.tools()[name]

        @settings(
            max_examples=EXAMPLES_PER_TOOL,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(arguments=arguments_for(tool, server.world))
        def check(arguments: dict[str, Json]) -> None:
            assert_clean(name, server.call(name, arguments), server.crashes)

        check()


def test_a_fifo_or_a_link_out_named_as_an_input_file_is_refused_at_once(tmp_path: Path) -> None:
    # Found by the property above: a JSONL path naming a FIFO hung the batch tool for ever.
    with served(tmp_path) as server:
        for name in ("pipe.jsonl", "pipe.png", "pipe.mp4", "zero-link.png", "passwd-link.png"):
            calls: dict[str, dict[str, Any]] = {
                "generate": {"prompt": "a kite", "image": name},
                "batch": {"jsonl_path": name},
                "create_character": {"name": "Moss", "clip_path": name},
            }
            calls_with_item_image = {"batch": {"requests": [{"prompt": "a kite", "image": name}]}}
            for tool, arguments in [*calls.items(), *calls_with_item_image.items()]:
                result = server.call(tool, arguments)
                assert result.is_error, (tool, arguments)
                assert_clean(tool, result, server.crashes)


# Tools that never reach the backend read only the local registry: faults cannot touch them.
BACKEND_TOOLS = tuple(
    name for name in TOOLS if name not in ("list_videos", "list_characters", "studio_media")
)


@pytest.mark.parametrize("name", BACKEND_TOOLS)
def test_a_misbehaving_backend_gets_a_result_or_a_clean_tool_error_never_a_crash(
    tmp_path: Path, name: str
) -> None:
    with served(tmp_path) as server:
        tool = server.tools()[name]
        waits = "wait_seconds" in tool.input_schema.get("properties", {})

        @settings(
            max_examples=FAULT_EXAMPLES_PER_TOOL,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(
            arguments=arguments_for(tool, server.world, hostile=False),
            wait=st.sampled_from((0, 3)),
            faults=st.lists(st.tuples(st.integers(0, 4), BACKEND_FAULTS), min_size=1, max_size=3),
        )
        def check(arguments: dict[str, Json], wait: int, faults: list[tuple[int, Json]]) -> None:
            if waits:
                arguments = {**arguments, "wait_seconds": wait}
            server.backend.arm(faults)
            try:
                result = server.call(name, arguments)
            finally:
                server.backend.arm(())
            assert_clean(name, result, server.crashes)

        check()
