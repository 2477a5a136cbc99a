"""create_character is safe to retry: a call repeating an idempotency_key gets its first call's
character and uploads nothing — from another server on the same registry too — while a key
whose first call made nothing (refused) is free again, and a lost answer is never resent.
Driven through a real MCP client against the emulator; the transport in front of it injects the
refusal, the lost answer and the upload still in flight."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client

from helpers import Rig, error_code, structured, tool_error
from sora_mcp.clock import FakeClock
from sora_mcp.config import Settings
from sora_mcp.server.app import build_server
from test_production import clip_file

pytestmark = pytest.mark.anyio

UPLOADS = "/videos/characters"


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(root=tmp_path)


def _is_upload(request: httpx2.Request) -> bool:
    return request.method == "POST" and request.url.path.endswith(UPLOADS)


class Trouble(httpx2.AsyncBaseTransport):
    """In front of the rig's transport: the first upload is refused (400), or reaches the backend
    and loses its answer, or is held until `release` is set."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, fate: str) -> None:
        self.inner, self.fate = inner, fate
        self.arrived, self.release = anyio.Event(), anyio.Event()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if not _is_upload(request) or self.fate == "done":
            return await self.inner.handle_async_request(request)
        fate, self.fate = self.fate, "done"
        if fate == "refuse":
            return httpx2.Response(
                400, json={"error": {"message": "clip rejected", "type": "invalid_request_error"}}
            )
        if fate == "hold":
            self.arrived.set()
            await self.release.wait()
        answer = await self.inner.handle_async_request(request)
        if fate == "lose":
            await answer.aread()
            raise httpx2.ReadError("connection reset before the answer")
        return answer


class Handover(FakeClock):
    """A fake clock that, once `armed`, lets the held upload go on the first sleep and then waits
    (for real) until the call that sent it has finished: a retry polling for that call's answer
    sees it arrive midway through its wait."""

    def __init__(self, done: anyio.Event) -> None:
        super().__init__()
        self.done, self.armed = done, False
        self.release = anyio.Event()

    async def sleep(self, seconds: float) -> None:
        if self.armed:
            self.release.set()
            with anyio.fail_after(30):
                await self.done.wait()
        await super().sleep(seconds)


def _server(rig: Rig, transport: httpx2.AsyncBaseTransport | None = None) -> Any:
    return build_server(
        Settings.from_env(backend="emulator"), clock=rig.clock, transport=transport or rig.transport
    )


def _args(clip: Path, key: str | None = "pip-1", **more: Any) -> dict[str, Any]:
    return {"name": "Pip", "clip_path": str(clip), **({"idempotency_key": key} if key else {}), **more}


async def test_a_retry_with_the_same_key_on_another_server_returns_the_first_character_and_uploads_nothing(
    rig: Rig, tmp_path: Path
) -> None:
    clip = clip_file(tmp_path / "out" / "pip.mp4", 3.0)
    async with Client(_server(rig)) as first_server:
        first = structured(await first_server.call_tool("create_character", _args(clip)))
    async with Client(_server(rig)) as second_server:  # another process on the same registry
        again = structured(await second_server.call_tool("create_character", _args(clip)))
        other_key = structured(await second_server.call_tool("create_character", _args(clip, "pip-2")))
        listed = structured(await second_server.call_tool("list_characters", {}))

    assert again["character"] == first["character"]
    assert "already used" in again["next_step"]
    assert other_key["character"]["id"] != first["character"]["id"]
    assert listed["count"] == 2
    assert rig.transport.count("POST", UPLOADS) == 2


async def test_a_refused_upload_frees_its_key_for_the_retry(rig: Rig, tmp_path: Path) -> None:
    clip = clip_file(tmp_path / "out" / "pip.mp4", 3.0)
    trouble = Trouble(rig.transport, "refuse")
    async with Client(_server(rig, trouble)) as client:
        refused = await client.call_tool("create_character", _args(clip))
        retried = structured(await client.call_tool("create_character", _args(clip)))

    assert refused.is_error and tool_error(refused)["kind"] == "bad_request"
    assert retried["character"]["name"] == "Pip" and "already used" not in retried["next_step"]
    assert rig.transport.count("POST", UPLOADS) == 1  # the refusal never reached the backend


async def test_a_lost_upload_answer_is_never_resent_under_its_key(rig: Rig, tmp_path: Path) -> None:
    clip = clip_file(tmp_path / "out" / "pip.mp4", 3.0)
    trouble = Trouble(rig.transport, "lose")
    async with Client(_server(rig, trouble)) as client:
        lost = await client.call_tool("create_character", _args(clip))
        rig.clock.advance(120)  # past any upload's timeout
        retried = await client.call_tool("create_character", _args(clip))
        new_key = structured(await client.call_tool("create_character", _args(clip, "pip-again")))

    assert tool_error(lost)["kind"] == "outcome_unknown"
    assert error_code(retried) == ("character_answer_lost", "idempotency_key")
    assert new_key["character"]["name"] == "Pip"
    assert rig.transport.count("POST", UPLOADS) == 2  # the lost one, and the new key's


async def test_a_retry_arriving_while_the_first_upload_is_in_flight_waits_for_its_character(
    tmp_path: Path,
) -> None:
    done = anyio.Event()
    clock = Handover(done)
    rig = Rig(root=tmp_path, clock=clock)
    trouble = Trouble(rig.transport, "hold")
    trouble.release = clock.release
    clip = clip_file(tmp_path / "out" / "pip.mp4", 3.0)
    answers: dict[str, Any] = {}

    async def first_call(client: Client) -> None:
        answers["first"] = structured(await client.call_tool("create_character", _args(clip)))
        done.set()

    with anyio.fail_after(60):
        async with Client(_server(rig, trouble)) as client, anyio.create_task_group() as group:
            group.start_soon(first_call, client)
            await trouble.arrived.wait()
            clock.armed = True
            answers["retry"] = structured(await client.call_tool("create_character", _args(clip)))

    assert answers["retry"]["character"] == answers["first"]["character"]
    assert "already used" in answers["retry"]["next_step"]
    assert rig.transport.count("POST", UPLOADS) == 1


async def test_a_retry_while_the_first_upload_outlasts_its_wait_is_refused_and_sends_nothing(
    rig: Rig, tmp_path: Path
) -> None:
    clip = clip_file(tmp_path / "out" / "pip.mp4", 3.0)
    trouble = Trouble(rig.transport, "hold")
    with anyio.fail_after(60):
        async with Client(_server(rig, trouble)) as client, anyio.create_task_group() as group:
            group.start_soon(client.call_tool, "create_character", _args(clip))
            await trouble.arrived.wait()
            busy = await client.call_tool("create_character", _args(clip))
            trouble.release.set()

    assert error_code(busy) == ("key_in_use", "idempotency_key")
    assert rig.transport.count("POST", UPLOADS) == 1
