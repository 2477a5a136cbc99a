"""The shared queue of direct-batch items, on both stores (the `store` fixture of tests/pg.py)."""

from __future__ import annotations

from typing import Any

from sora_mcp.clock import FakeClock
from sora_mcp.registry.records import BatchRecord, VideoRecord
from sora_mcp.registry.store import Registry


def _video(local_id: str, *, created_at: float = 1_000.0, **fields: Any) -> VideoRecord:
    base: dict[str, Any] = {
        "local_id": local_id,
        "backend": "emulator",
        "model": "sora-2",
        "prompt": f"a kite over dunes ({local_id})",
        "size": "720x1280",
        "seconds": 4,
        "created_at": created_at,
        "updated_at": created_at,
        "estimated_cost_usd": 0.4,
    }
    return VideoRecord.model_validate(base | fields)


def _direct_batch(store: Registry, count: int, *, batch_id: str = "b1") -> list[str]:
    items = [
        _video(f"{batch_id}-{n}", created_at=1_000.0 + n, status="pending", batch_id=batch_id)
        for n in range(count)
    ]
    store.record_intents(items)
    store.put_batch(
        BatchRecord(
            local_id=batch_id,
            backend="emulator",
            mode="direct",
            status="in_progress",
            created_at=1_000.0,
            updated_at=1_000.0,
            items={r.local_id: r.local_id for r in items},
        )
    )
    return [r.local_id for r in items]


def _claim(store: Registry, owner: str, now: float = 50.0, concurrency: int = 2) -> VideoRecord | None:
    return store.claim_batch_item(
        backend="emulator", owner=owner, lease_now=now, lease_seconds=30.0, concurrency=concurrency
    )


def test_items_are_claimed_oldest_first_and_never_by_two_owners_past_the_concurrency(store: Registry) -> None:
    ids = _direct_batch(store, 4)

    first, second = _claim(store, "host-a"), _claim(store, "host-b")
    third = _claim(store, "host-c")

    assert first is not None and second is not None
    assert [first.local_id, second.local_id] == ids[:2]
    assert first.status == "submitting" and store.get_video(ids[0]).status == "submitting"  # type: ignore[union-attr]
    assert third is None  # two of this backend are in flight fleet-wide
    store.release_lease(ids[0], "host-a")
    assert (claimed := _claim(store, "host-c")) is not None and claimed.local_id == ids[2]


def test_items_of_a_batch_not_recorded_yet_are_never_claimed(store: Registry) -> None:
    store.record_intents([_video("orphan", status="pending", batch_id="missing")])

    assert _claim(store, "host-a") is None


def test_a_lapsed_lease_makes_its_unanswered_item_unknown_and_frees_the_slot(store: Registry) -> None:
    ids = _direct_batch(store, 3)
    held = _claim(store, "dead-host", now=50.0)
    answered = _claim(store, "dead-host", now=50.0)
    assert held is not None and answered is not None
    store.record_submitted(
        answered.local_id, video_id="video_1", status="queued", progress=0, remote_created_at=1
    )
    assert store.renew_leases("dead-host", 90.0) == 2

    assert store.expire_leases(lease_now=85.0, stale_before=0.0) == []  # renewed: still held
    settled = store.expire_leases(lease_now=95.0, stale_before=0.0)

    assert settled == [held.local_id]
    lost = store.get_video(held.local_id)
    assert lost is not None and lost.status == "unknown" and "never resent" in (lost.note or "")
    assert store.get_video(answered.local_id).status == "queued"  # type: ignore[union-attr]
    assert (claimed := _claim(store, "host-b", now=95.0)) is not None and claimed.local_id == ids[2]


def test_a_submitting_item_without_a_lease_is_settled_only_once_stale(
    store: Registry, clock: FakeClock
) -> None:
    (item,) = _direct_batch(store, 1)
    store.update_video(item, status="submitting")

    assert store.expire_leases(lease_now=0.0, stale_before=clock.now() - 120) == []
    assert store.expire_leases(lease_now=0.0, stale_before=clock.now() + 1) == [item]


def test_a_pause_holds_every_claim_until_it_ends_and_never_shortens(
    store: Registry, clock: FakeClock
) -> None:
    _direct_batch(store, 1)
    store.pause_backend("emulator", clock.now() + 10)
    store.pause_backend("emulator", clock.now() + 5)

    assert store.paused_until("emulator") == clock.now() + 10
    assert _claim(store, "host-a") is None
    clock.advance(11)
    assert _claim(store, "host-a") is not None


def test_an_owner_holds_only_its_fair_share_of_the_slots_while_others_ask_for_work(store: Registry) -> None:
    ids = _direct_batch(store, 10)
    alone = [_claim(store, "host-a", concurrency=4) for _ in range(2)]  # the only worker yet
    others = [_claim(store, "host-b", concurrency=4), _claim(store, "host-c", concurrency=4)]
    assert all(alone) and all(others)  # 4 of 4 slots taken

    store.release_lease(ids[2], "host-b")  # host-b's send is recorded: a slot is free
    refused = _claim(store, "host-a", concurrency=4)  # 2 held, 3 workers: ceil(4 / 3) = 2
    taken = _claim(store, "host-b", concurrency=4)

    assert refused is None and taken is not None and taken.local_id == ids[4]
    # Once the others stop asking (their turn lapses with the leases), host-a may take every slot.
    later = 50.0 + 31.0
    store.expire_leases(lease_now=later, stale_before=0.0)
    claimed = [_claim(store, "host-a", now=later, concurrency=4) for _ in range(4)]
    assert all(claimed) and _claim(store, "host-a", now=later, concurrency=4) is None


def test_background_work_is_claimed_by_one_owner_until_it_is_released_or_its_claim_lapses(
    store: Registry,
) -> None:
    def claim(owner: str, now: float) -> bool:
        return store.claim_work("follow:v1", owner=owner, lease_now=now, lease_seconds=30.0)

    first, rival, again = claim("host-a", 50.0), claim("host-b", 60.0), claim("host-a", 70.0)
    assert (first, rival, again) == (True, False, True)  # the holder may claim again (re-entrant)

    assert store.renew_work("host-a", 130.0) == 1 and store.renew_work("host-b", 130.0) == 0
    assert not claim("host-b", 110.0)  # renewed until 130: still held
    assert claim("host-b", 130.0)  # lapsed (its process stopped renewing): taken over
    assert not claim("host-a", 140.0)

    store.release_work("follow:v1", "host-a")  # not the holder's: no effect
    assert not claim("host-a", 141.0)
    store.release_work("follow:v1", "host-b")
    assert claim("host-a", 142.0)
    assert store.claim_work("follow:v2", owner="host-b", lease_now=142.0, lease_seconds=30.0)  # by name
