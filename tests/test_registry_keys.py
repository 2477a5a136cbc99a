"""Idempotency keys, on both stores (the `store` fixture of tests/pg.py): the store enforces
that a key binds one call's records."""

from __future__ import annotations

from typing import Any

from sora_mcp.clock import FakeClock
from sora_mcp.registry.interface import SpendLimit
from sora_mcp.registry.records import VideoRecord
from sora_mcp.registry.store import Registry


def _video(local_id: str, **fields: Any) -> VideoRecord:
    base: dict[str, Any] = {
        "local_id": local_id,
        "backend": "emulator",
        "model": "sora-2",
        "prompt": f"a kite over dunes ({local_id})",
        "size": "720x1280",
        "seconds": 4,
        "created_at": 1_000.0,
        "updated_at": 1_000.0,
        "estimated_cost_usd": 0.4,
    }
    return VideoRecord.model_validate(base | fields)


def test_a_used_key_answers_its_first_records_and_stores_nothing(store: Registry) -> None:
    first = store.record_intents([_video("a"), _video("b")], key="k1", tool="generate")
    again = store.record_intents([_video("c")], key="k1", tool="generate")

    assert first.accepted and not first.replayed
    assert (again.accepted, again.replayed, [r.local_id for r in again.records]) == (False, True, ["a", "b"])
    assert store.get_video("c") is None


def test_a_replay_is_answered_even_when_the_budget_is_spent(store: Registry) -> None:
    limit = SpendLimit(since=0.0, limit_usd=0.8)
    store.record_intents([_video("a"), _video("b")], limit=limit, key="k1")

    again = store.record_intents([_video("c"), _video("d")], limit=limit, key="k1")
    other = store.record_intents([_video("e")], limit=limit, key="k2")

    assert again.replayed and [r.local_id for r in again.records] == ["a", "b"]
    assert (other.accepted, other.replayed, round(other.spent_usd, 2)) == (False, False, 0.8)


def test_a_key_whose_call_sent_nothing_is_free_again(store: Registry) -> None:
    store.record_intents([_video("d")], key="k2", tool="generate")
    store.discard_intent("d")  # refused by the backend: nothing was sent under k2

    retried = store.record_intents([_video("e")], key="k2", tool="generate")

    assert retried.accepted and not retried.replayed
    assert store.get_video("e") is not None


def test_a_key_older_than_its_window_is_forgotten(store: Registry, clock: FakeClock) -> None:
    store.record_intents([_video("a")], key="derived:x")
    clock.advance(700)

    later = store.record_intents([_video("b")], key="derived:x", key_since=clock.now() - 600)
    recent = store.record_intents([_video("c")], key="derived:x", key_since=clock.now() - 600)

    assert later.accepted and not later.replayed
    assert recent.replayed and [r.local_id for r in recent.records] == ["b"]
