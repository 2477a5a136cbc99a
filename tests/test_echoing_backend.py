"""Redaction everywhere (issue 8, finding 10): a backend that echoes the API key — in an error's
message, code and param, in a failed job's error (long enough that truncating first would keep
a prefix), in a batch's result lines — puts the key in no tool result and no registry file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client

from helpers import Rig
from sora_mcp.config import Settings
from sora_mcp.server.app import build_server

pytestmark = pytest.mark.anyio

CANARY = "sk-canary-0123456789abcdefGHIJKLMNOP"


class Echoing(httpx2.AsyncBaseTransport):
    """In front of the emulator: every error carries the key it was sent, and every failed
    job's error (codes and messages) and every batch output line repeats it."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        sent = request.headers.get("authorization", "")
        key = sent.removeprefix("Bearer ")
        if request.method == "POST" and b"[echo-refusal]" in request.content:
            envelope = {"message": f"{'x' * 490} invalid key {key}", "code": key, "param": sent, "type": key}
            return httpx2.Response(400, json={"error": envelope})
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        if request.url.path.endswith("/content") or response.status_code != 200:
            # Files (a batch's result lines) and error answers: every message repeats the key.
            for quote in (b'"message": "', b'"message":"'):
                body = body.replace(quote, quote + f"{key} ({sent}) ".encode())
            return httpx2.Response(response.status_code, headers=_plain(response), content=body)
        data = json.loads(body)
        if isinstance(data, dict) and data.get("object") == "video" and data.get("status") == "failed":
            data["error"] = {"code": key, "message": f"{'y' * 495}{key} ({sent})"}
        return httpx2.Response(response.status_code, headers=_plain(response), json=data)


def _plain(response: httpx2.Response) -> dict[str, str]:
    return {
        k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-encoding")
    }


def everything_on_disk(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file() and "emulator" not in p.parts)


async def test_an_echoing_backend_leaks_the_key_into_no_result_and_no_registry_file(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    settings = Settings.from_env(backend="remote", base_url="http://backend.invalid/v1", api_key=CANARY)
    server = build_server(settings, clock=rig.clock, transport=Echoing(rig.transport), profile=None)
    results: list[Any] = []
    async with Client(server) as client:
        results.append(await client.call_tool("generate", {"prompt": "a cat [echo-refusal]"}))
        failed = await client.call_tool("generate", {"prompt": "a dog [fail:moderation_blocked]"})
        results.append(failed)
        video_id = failed.structured_content["videos"][0]["id"] if failed.structured_content else None
        results.append(await client.call_tool("get_video", {"video_id": video_id, "wait_seconds": 600}))
        batch = await client.call_tool(
            "batch",
            {
                "requests": [
                    {"custom_id": "a", "prompt": "a fox [fail:sentinel_block]"},
                    {"custom_id": "b", "prompt": "a hen"},
                ],
                "mode": "native",
                "wait_seconds": 600,
            },
        )
        results.append(batch)
        results.append(await client.call_tool("list_videos", {"limit": 50}))

    dumped = json.dumps([r.model_dump(mode="json") for r in results])
    assert results[0].is_error and results[2].structured_content["video"]["status"] == "failed"
    assert CANARY not in dumped and CANARY[:12] not in dumped
    on_disk = everything_on_disk(tmp_path)
    assert CANARY.encode() not in on_disk and CANARY[:12].encode() not in on_disk
