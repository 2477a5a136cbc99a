"""Ask before spending: above SORA_MCP_CONFIRM_ABOVE_USD a billable call waits for the user.

Through the SDK Client on both protocol eras: a client whose user accepts, one whose user
declines, and one without elicitation (quote + single-use token). The counting transport in
front of the emulator proves what reached the backend: nothing on a no, one request on a yes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.context import ClientRequestContext
from mcp.types import ElicitRequestParams, ElicitResult

from helpers import Rig, error_code, structured, tool_error
from sora_mcp.config import DEFAULT_CONFIRM_ABOVE_USD, Settings
from sora_mcp.errors import ConfigError
from sora_mcp.server.app import build_server
from sora_mcp.server.confirm import TOKEN_TTL_SECONDS

pytestmark = pytest.mark.anyio

ERAS = ["legacy", "2026-07-28"]
# 8 s of sora-2 at $0.10/s: $0.80, above a $0.50 threshold.
PRICEY = {"prompt": "a kite over dunes", "seconds": 8}


class User:
    """Answers every confirmation the same way and remembers what it was shown."""

    def __init__(self, action: str, start: bool = True) -> None:
        self.action = action
        self.start = start
        self.asked: list[ElicitRequestParams] = []

    async def __call__(self, _context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        self.asked.append(params)
        content = {"start": self.start} if self.action == "accept" else None
        return ElicitResult(action=self.action, content=content)

    @property
    def messages(self) -> list[str]:
        return [p.message for p in self.asked]


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(root=tmp_path, speed=2000)


@asynccontextmanager
async def session(
    rig: Rig, *, user: User | None, mode: str = "2026-07-28", threshold: str = "0.5"
) -> AsyncIterator[Client]:
    settings = Settings.from_env(backend="emulator", confirm_above_usd=threshold)
    server = build_server(settings, clock=rig.clock, transport=rig.transport)
    async with Client(server, elicitation_callback=user, mode=mode) as client:  # type: ignore[arg-type]
        yield client


def posts(rig: Rig) -> int:
    return rig.transport.count("POST", "/videos")


def quote_of(result: Any, code: str = "confirmation_needed") -> dict[str, Any]:
    """The refusal of a call that needs confirmation: its code, token and figure."""
    error = tool_error(result)
    assert (error["kind"], error["code"], error["param"]) == ("not_confirmed", code, "confirm_token")
    assert error["confirm_token"].startswith("cfm_")
    assert f'confirm_token="{error["confirm_token"]}"' in error["message"]  # the model reads the text
    return error


@pytest.mark.parametrize("mode", ERAS)
async def test_a_user_who_accepts_sees_the_figures_and_the_clip_is_sent_once(rig: Rig, mode: str) -> None:
    user = User("accept")
    async with session(rig, user=user, mode=mode) as client:
        started = structured(await client.call_tool("generate", PRICEY))
    assert len(user.asked) == 1
    (message,) = user.messages
    assert "1 × 8 s sora-2 720x1280 clip" in message and "$0.80" in message and "$0.50" in message
    assert "spent today: $0.00" in message
    assert user.asked[0].requested_schema["properties"]["start"]["type"] == "boolean"  # type: ignore[union-attr]
    assert len(started["videos"]) == 1
    assert posts(rig) == 1


@pytest.mark.parametrize("mode", ERAS)
async def test_a_user_who_declines_or_dismisses_stops_the_call_before_anything_is_sent(
    rig: Rig, mode: str
) -> None:
    declining, dismissing, unticking = User("decline"), User("cancel"), User("accept", start=False)
    for user in (declining, dismissing, unticking):
        async with session(rig, user=user, mode=mode) as client:
            result = await client.call_tool("generate", PRICEY)
            listed = structured(await client.call_tool("list_videos", {}))
        assert tool_error(result)["kind"] == "not_confirmed"
        assert error_code(result)[0] == ("dismissed" if user is dismissing else "declined")
        assert "Nothing was billed" in tool_error(result)["message"]
        assert len(user.asked) == 1
        assert listed["count"] == 0
    assert posts(rig) == 0


async def test_a_client_without_elicitation_gets_a_quote_and_a_token_that_works_once(rig: Rig) -> None:
    async with session(rig, user=None) as client:
        quoted = quote_of(await client.call_tool("generate", PRICEY))
        assert posts(rig) == 0
        assert quoted["estimated_cost_usd"] == pytest.approx(0.80)
        assert "$0.80" in quoted["message"] and "SORA_MCP_CONFIRM_ABOVE_USD" in quoted["message"]
        token = quoted["confirm_token"]

        started = structured(await client.call_tool("generate", {**PRICEY, "confirm_token": token}))
        assert len(started["videos"]) == 1
        assert posts(rig) == 1

        again = quote_of(
            await client.call_tool("generate", {**PRICEY, "confirm_token": token}), "token_unknown"
        )
    assert again["confirm_token"] != token  # a fresh quote, for the user to confirm again
    assert posts(rig) == 1


async def test_an_expired_token_or_one_for_other_arguments_sends_nothing(rig: Rig) -> None:
    async with session(rig, user=None) as client:
        token = quote_of(await client.call_tool("generate", PRICEY))["confirm_token"]
        rig.clock.advance(TOKEN_TTL_SECONDS + 1)
        quote_of(await client.call_tool("generate", {**PRICEY, "confirm_token": token}), "token_expired")

        other = quote_of(await client.call_tool("generate", PRICEY))["confirm_token"]
        longer = await client.call_tool("generate", {**PRICEY, "seconds": 12, "confirm_token": other})
    assert quote_of(longer, "token_mismatch")["estimated_cost_usd"] == pytest.approx(1.20)
    assert posts(rig) == 0


async def test_calls_at_or_under_the_threshold_and_dry_runs_are_not_asked_about(rig: Rig) -> None:
    user = User("decline")
    async with session(rig, user=user) as client:
        structured(await client.call_tool("generate", {"prompt": "a kite", "seconds": 4}))  # $0.40
        dry = structured(
            await client.call_tool(
                "batch", {"requests": [{"prompt": "a kite", "seconds": 20}] * 2, "dry_run": True}
            )
        )
    assert user.asked == []
    assert dry["estimated_total_usd"] == pytest.approx(4.0)
    assert posts(rig) == 1


async def test_extend_edit_batch_and_create_character_ask_too(rig: Rig) -> None:
    async with session(rig, user=User("accept"), threshold="off") as client:
        made = structured(await client.call_tool("generate", {"prompt": "a kite", "wait_seconds": 600}))
        video_id = made["videos"][0]["id"]
    sent = len(rig.transport.requests)
    user = User("decline")
    calls: list[tuple[str, dict[str, Any]]] = [
        ("extend", {"video_id": video_id, "prompt": "it climbs", "seconds": 8}),
        ("edit", {"video_id": video_id, "prompt": "make it red"}),
        ("batch", {"requests": [{"prompt": "a kite"}, {"prompt": "a boat"}]}),
        ("create_character", {"name": "Moss", "video_id": video_id}),
    ]
    async with session(rig, user=user, threshold="0") as client:
        for name, arguments in calls:
            result = await client.call_tool(name, arguments)
            assert error_code(result) == ("declined", None), name
    assert [m.split(":")[0] for m in user.messages] == [name for name, _ in calls]
    assert "$0.80" in user.messages[0] and "$0.40" in user.messages[1] and "$0.80" in user.messages[2]
    assert "no list price" in user.messages[3]
    assert len(rig.transport.requests) == sent  # not one request of any kind reached the backend


def test_the_threshold_defaults_to_a_dollar_on_remote_backends_and_off_on_the_emulator() -> None:
    remote = Settings.from_env({"OPENAI_API_KEY": "sk-test"})
    assert remote.confirm_above_usd == DEFAULT_CONFIRM_ABOVE_USD == 1.0
    assert Settings.from_env({}).confirm_above_usd is None
    assert Settings.from_env({"SORA_MCP_CONFIRM_ABOVE_USD": "2.5"}).confirm_above_usd == 2.5
    assert (
        Settings.from_env({"OPENAI_API_KEY": "k", "SORA_MCP_CONFIRM_ABOVE_USD": "off"}).confirm_above_usd
        is None
    )
    with pytest.raises(ConfigError, match="SORA_MCP_CONFIRM_ABOVE_USD"):
        Settings.from_env({"SORA_MCP_CONFIRM_ABOVE_USD": "lots"})


def test_the_instructions_say_when_calls_ask_first(tmp_path: Path) -> None:
    asking = build_server(Settings.from_env(backend="emulator", confirm_above_usd="2"))
    silent = build_server(Settings.from_env(backend="emulator"))
    assert asking.instructions is not None and "above $2.00 ask the user first" in asking.instructions
    assert silent.instructions is not None and "confirm_token" not in silent.instructions


async def test_one_token_sent_twice_at_once_starts_one_job(rig: Rig) -> None:
    async with session(rig, user=None) as client:
        token = quote_of(await client.call_tool("generate", PRICEY))["confirm_token"]
        results: list[Any] = []

        async def call() -> None:
            results.append(await client.call_tool("generate", {**PRICEY, "confirm_token": token}))

        async with anyio.create_task_group() as group:
            group.start_soon(call)
            group.start_soon(call)
    assert sorted(bool(r.is_error) for r in results) == [False, True]
    assert posts(rig) == 1
