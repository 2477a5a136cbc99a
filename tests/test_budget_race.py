"""The spending guard holds under concurrency: the budget check and the reservation of the
intents are one registry transaction, whichever process makes them."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest

from procs import StdioServer, child_env
from sora_mcp.emulator.store import EmulatorStore
from sora_mcp.registry.records import VideoRecord
from sora_mcp.registry.store import Registry, SpendLimit
from sora_mcp.studio.budget import day_start

DAY = 1_780_012_800.0  # 2026-05-29 00:00 UTC


def _intent(cost: float, created_at: float, **fields: Any) -> VideoRecord:
    return VideoRecord(
        local_id=uuid.uuid4().hex,
        backend="emulator",
        model="sora-2",
        prompt="p",
        size="720x1280",
        seconds=4,
        created_at=created_at,
        updated_at=created_at,
        estimated_cost_usd=cost,
        **fields,
    )


def test_intents_reserved_together_are_all_written_or_none(tmp_path: Path) -> None:
    limit = SpendLimit(since=DAY, limit_usd=1.0)
    with Registry.open(tmp_path / "registry") as registry:
        first = registry.record_intents([_intent(0.4, DAY + 10), _intent(0.4, DAY + 10)], limit=limit)
        refused = registry.record_intents([_intent(0.1, DAY + 20), _intent(0.2, DAY + 20)], limit=limit)
        fits = registry.record_intents([_intent(0.2, DAY + 30)], limit=limit)

        assert (first.accepted, refused.accepted, fits.accepted) == (True, False, True)
        assert refused.spent_usd == pytest.approx(0.8) and refused.cost_usd == pytest.approx(0.3)
        assert registry.spent_since(DAY) == pytest.approx(1.0)
        assert len(registry.list_videos()) == 3


def test_discarding_an_intent_releases_its_reservation(tmp_path: Path) -> None:
    limit = SpendLimit(since=DAY, limit_usd=0.5)
    with Registry.open(tmp_path / "registry") as registry:
        sent, unsent = _intent(0.4, DAY + 1), _intent(0.4, DAY + 1, status="pending")
        registry.record_intents([sent], limit=limit)
        registry.record_intents([unsent])
        assert not registry.record_intents([_intent(0.1, DAY + 2)], limit=limit).accepted

        registry.discard_intent(sent.local_id)  # refused by the backend
        registry.discard_intent(unsent.local_id)  # never sent

        assert registry.spent_since(DAY) == 0.0
        assert registry.record_intents([_intent(0.5, DAY + 3)], limit=limit).accepted


def _reserve_once(folder: str, start: Any, cost: float) -> None:
    with Registry.open(Path(folder)) as registry:
        start.wait(timeout=60)
        reservation = registry.record_intents(
            [_intent(cost, DAY + 60)], limit=SpendLimit(since=DAY, limit_usd=0.5)
        )
    raise SystemExit(0 if reservation.accepted else 3)


def test_eight_processes_reserving_against_a_budget_that_fits_one_get_exactly_one(tmp_path: Path) -> None:
    Registry.open(tmp_path / "registry").close()
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Event()
    workers = [
        spawn.Process(target=_reserve_once, args=(str(tmp_path / "registry"), start, 0.4)) for _ in range(8)
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=120)

    assert sorted(worker.exitcode or 0 for worker in workers) == [0] + [3] * 7
    with Registry.open(tmp_path / "registry") as registry:
        assert registry.spent_since(DAY) == pytest.approx(0.4)


def _seed_yesterday(home: Path, count: int) -> None:
    # Older records make a scan of the registry slow, as a busy user's is: they cost nothing today.
    yesterday = day_start(time.time()) - 3_600
    with Registry.open(home / "registry") as registry:
        for _ in range(count):
            registry.record_intent(_intent(0.4, yesterday, status="completed"))


def test_eight_server_processes_racing_a_budget_that_fits_one_send_exactly_one(tmp_path: Path) -> None:
    env = child_env(tmp_path, SORA_MCP_BUDGET_USD="0.50")
    _seed_yesterday(tmp_path / "home", 2_000)
    servers = [StdioServer(env, tmp_path / f"server{n}.log") for n in range(8)]
    results: dict[int, dict[str, Any]] = {}
    try:
        for server in servers:
            server.initialize(timeout=60)
        barrier = threading.Barrier(len(servers))

        def race(n: int) -> None:
            barrier.wait(timeout=60)
            results[n] = servers[n].call_raw("generate", {"prompt": f"race {n}", "seconds": 4}, timeout=60)

        threads = [threading.Thread(target=race, args=(n,)) for n in range(len(servers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=90)
    finally:
        for server in servers:
            server.close()

    accepted = [r for r in results.values() if not r.get("isError")]
    refused = [r["structuredContent"]["error"] for r in results.values() if r.get("isError")]
    assert (len(accepted), len(refused)) == (1, 7), results
    assert {(e["kind"], e["code"]) for e in refused} == {("budget_exceeded", "daily_limit")}
    assert len(EmulatorStore(tmp_path / "home" / "emulator").list_videos()) == 1
    with Registry.open(tmp_path / "home" / "registry") as registry:
        assert registry.spent_since(day_start(time.time())) == pytest.approx(0.4)


@pytest.mark.anyio
async def test_concurrent_calls_in_one_server_never_spend_past_the_budget(tmp_path: Path) -> None:
    from helpers import Rig, tool_error

    rig = Rig(root=tmp_path)
    generates: list[Any] = []
    batches: list[Any] = []
    async with rig.client(budget_daily_usd=1.0) as client:

        async def generate(n: int) -> None:  # two variations: $0.80, so one call fits
            generates.append(await client.call_tool("generate", {"prompt": f"pair {n}", "variations": 2}))

        async def batch(n: int) -> None:  # one $0.40 item each: $0.20 is left after the generate
            items = [{"prompt": f"item {n}", "custom_id": f"c{n}"}]
            batches.append(await client.call_tool("batch", {"requests": items, "mode": "direct"}))

        async with anyio.create_task_group() as group:
            for n in range(3):
                group.start_soon(generate, n)
        async with anyio.create_task_group() as group:
            for n in range(8):
                group.start_soon(batch, n)
        posts = rig.transport.count("POST")

    assert [r.is_error for r in generates].count(False) == 1
    assert all(tool_error(r)["code"] == "daily_limit" for r in generates if r.is_error)
    assert all(tool_error(r)["code"] == "daily_limit" for r in batches)
    assert posts == 2
