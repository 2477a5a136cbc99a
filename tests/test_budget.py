"""The spending guard refuses before anything is sent, with the figures."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sora_mcp.clock import FakeClock
from sora_mcp.config import Settings
from sora_mcp.errors import ConfigError
from sora_mcp.registry.records import VideoRecord
from sora_mcp.registry.store import Registry
from sora_mcp.studio.budget import Budget, BudgetExceeded, check_budget, spent_today

NOON = 1_780_056_000.0  # 2026-05-29 12:00 UTC


def _record(clock: FakeClock, cost: float, status: str = "queued") -> VideoRecord:
    return VideoRecord(
        local_id=uuid.uuid4().hex,
        backend="emulator",
        model="sora-2",
        prompt="p",
        size="720x1280",
        seconds=4,
        status=status,  # type: ignore[arg-type]
        created_at=clock.now(),
        updated_at=clock.now(),
        estimated_cost_usd=cost,
    )


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with Registry.open(tmp_path / "registry") as registry:
        yield registry


def test_spend_counts_todays_jobs_only_including_unknown_and_queued_items(registry: Registry) -> None:
    clock = FakeClock(NOON - 86_400)
    registry.record_intent(_record(clock, 5.0, "completed"))  # yesterday
    clock.advance(86_400)
    for cost, status in ((0.4, "completed"), (1.2, "unknown"), (0.8, "pending"), (2.0, "failed")):
        registry.record_intent(_record(clock, cost, status))
    assert spent_today(registry, clock) == pytest.approx(4.4)


def test_a_call_over_the_daily_budget_is_refused_with_the_figures(registry: Registry) -> None:
    clock = FakeClock(NOON)
    registry.record_intent(_record(clock, 9.0))
    budget = Budget(daily_usd=10.0)
    check_budget(budget, registry, clock, 1.0, "generate")  # exactly at the limit is allowed
    with pytest.raises(BudgetExceeded) as refused:
        check_budget(budget, registry, clock, 1.2, "generate")
    message = str(refused.value)
    assert "$1.20" in message
    assert "$9.00" in message
    assert "$10.00" in message
    assert "$1.00 left" in message


def test_the_per_call_limit_applies_to_the_whole_call(registry: Registry) -> None:
    clock = FakeClock(NOON)
    with pytest.raises(BudgetExceeded, match="per-call"):
        check_budget(Budget(per_call_usd=2.0), registry, clock, 2.4, "batch of 6")
    check_budget(Budget(per_call_usd=2.0), registry, clock, 2.0, "batch of 5")


def test_a_new_day_starts_a_new_budget(registry: Registry) -> None:
    clock = FakeClock(NOON)
    registry.record_intent(_record(clock, 10.0))
    clock.advance(43_200)  # midnight UTC
    check_budget(Budget(daily_usd=10.0), registry, clock, 10.0, "generate")


def test_budget_settings_are_validated() -> None:
    settings = Settings.from_env({"SORA_MCP_BUDGET_USD": "25", "SORA_MCP_BUDGET_PER_CALL_USD": "2.5"})
    assert (settings.budget_daily_usd, settings.budget_per_call_usd) == (25.0, 2.5)
    with pytest.raises(ConfigError, match="SORA_MCP_BUDGET_USD"):
        Settings.from_env({"SORA_MCP_BUDGET_USD": "lots"})
    with pytest.raises(ConfigError, match="SORA_MCP_BUDGET_PER_CALL_USD"):
        Settings.from_env({"SORA_MCP_BUDGET_PER_CALL_USD": "-1"})


@pytest.mark.anyio
async def test_tools_refuse_over_budget_calls_before_sending_anything(tmp_path: Path) -> None:
    from helpers import Rig, error_text, structured, tool_error

    rig = Rig(root=tmp_path)
    async with rig.client(budget_daily_usd=1.0, budget_per_call_usd=0.9) as client:
        first = structured(await client.call_tool("generate", {"prompt": "one", "wait_seconds": 600}))
        structured(await client.call_tool("generate", {"prompt": "two"}))
        posts = rig.transport.count("POST")
        refusals = [
            await client.call_tool("generate", {"prompt": "three"}),  # $0.80 + $0.40 > $1.00
            await client.call_tool("generate", {"prompt": "wide", "variations": 3}),  # $1.20 > $0.90 per call
            await client.call_tool(
                "extend", {"video_id": first["videos"][0]["id"], "prompt": "more", "seconds": 4}
            ),
            await client.call_tool(
                "batch",
                {
                    "requests": [{"prompt": "a", "custom_id": "a"}, {"prompt": "b", "custom_id": "b"}],
                    "mode": "direct",
                },
            ),
        ]
    assert rig.transport.count("POST") == posts
    assert [(tool_error(r)["kind"], tool_error(r)["code"]) for r in refusals] == [
        ("budget_exceeded", "daily_limit"),
        ("budget_exceeded", "per_call_limit"),
        ("budget_exceeded", "daily_limit"),
        ("budget_exceeded", "daily_limit"),
    ]
    for refusal in refusals:
        text = error_text(refusal)
        assert "Nothing was sent" in text
        assert "$" in text
