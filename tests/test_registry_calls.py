"""What the registry remembers of tool calls, on both stores (the `store` fixture of
tests/pg.py): create_character's idempotency keys, and single-use spending confirmation tokens.
Concurrent callers are real threads, each on its own connection where the store has several."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest

from sora_mcp.clock import FakeClock
from sora_mcp.errors import RegistryError
from sora_mcp.registry.records import CharacterRecord
from sora_mcp.registry.store import Registry


def _character(char_id: str, name: str = "Pip") -> CharacterRecord:
    return CharacterRecord(id=char_id, name=name, backend="emulator", source="a clip", created_at=1_000.0)


# ---- character keys --------------------------------------------------------------------------------


def test_the_first_call_takes_a_key_and_a_retry_finds_its_character(store: Registry) -> None:
    first = store.begin_character("pip-1")
    while_uploading = store.begin_character("pip-1")
    store.put_character(_character("char_1"), key="pip-1")
    after = store.begin_character("pip-1")

    assert first.fresh and first.record is None
    assert (while_uploading.fresh, while_uploading.record) == (False, None)
    assert while_uploading.started_at == first.started_at
    assert not after.fresh and after.record is not None and after.record.id == "char_1"


def test_a_key_whose_call_made_nothing_is_free_again_but_an_answered_one_is_kept(store: Registry) -> None:
    store.begin_character("refused")
    store.release_character_key("refused")
    store.begin_character("made")
    store.put_character(_character("char_2"), key="made")
    store.release_character_key("made")

    assert store.begin_character("refused").fresh
    kept = store.begin_character("made")
    assert not kept.fresh and kept.record is not None and kept.record.id == "char_2"


def test_a_key_used_before_its_window_is_taken_afresh(store: Registry, clock: FakeClock) -> None:
    store.begin_character("derived:x")
    store.put_character(_character("char_3"), key="derived:x")
    clock.advance(700)

    inside = store.begin_character("derived:x", key_since=clock.now() - 800)
    outside = store.begin_character("derived:x", key_since=clock.now() - 600)

    assert not inside.fresh and inside.record is not None
    assert outside.fresh and outside.record is None


def test_of_eight_racing_callers_exactly_one_takes_a_key(store: Registry) -> None:
    start = Barrier(8)

    def take(_: int) -> bool:
        start.wait()
        return store.begin_character("raced").fresh

    with ThreadPoolExecutor(8) as pool:
        taken = list(pool.map(take, range(8)))

    assert taken.count(True) == 1


def test_answering_a_key_nobody_holds_is_refused_and_stores_nothing(store: Registry) -> None:
    with pytest.raises(RegistryError):
        store.put_character(_character("char_4"), key="never-taken")
    assert store.get_character("char_4") is None


# ---- confirmation tokens ---------------------------------------------------------------------------


def test_a_token_is_redeemed_once_with_its_digest_and_expiry(store: Registry, clock: FakeClock) -> None:
    store.issue_confirmation("cfm_a", "digest-a", clock.now() + 600)

    first = store.redeem_confirmation("cfm_a")
    second = store.redeem_confirmation("cfm_a")

    assert first == ("digest-a", clock.now() + 600)
    assert second is None
    assert store.redeem_confirmation("cfm_never") is None


def test_of_eight_racing_redeemers_exactly_one_gets_the_token(store: Registry, clock: FakeClock) -> None:
    store.issue_confirmation("cfm_b", "digest-b", clock.now() + 600)
    start = Barrier(8)

    def redeem(_: int) -> bool:
        start.wait()
        return store.redeem_confirmation("cfm_b") is not None

    with ThreadPoolExecutor(8) as pool:
        redeemed = list(pool.map(redeem, range(8)))

    assert redeemed.count(True) == 1
