"""The registry's query index: written with its record in one transaction, rebuilt from the
records when missing or out of step, and answering the same queries the records would."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import diskcache
import pytest

from sora_mcp.clock import FakeClock
from sora_mcp.errors import RegistryError
from sora_mcp.registry.keys import VIDEO, VIDEO_INDEX
from sora_mcp.registry.records import BatchRecord, VideoRecord
from sora_mcp.registry.store import Registry


def _video(local_id: str, created_at: float, **fields: Any) -> VideoRecord:
    base: dict[str, Any] = {
        "local_id": local_id,
        "backend": "emulator",
        "model": "sora-2",
        "prompt": f"a lighthouse at dusk ({local_id})",
        "size": "720x1280",
        "seconds": 4,
        "created_at": created_at,
        "updated_at": created_at,
        "estimated_cost_usd": 0.4,
    }
    return VideoRecord.model_validate(base | fields)


def _ids(records: list[VideoRecord]) -> list[str]:
    return [rec.local_id for rec in records]


@pytest.fixture
def registry(tmp_path: Path, clock: FakeClock) -> Iterator[Registry]:
    with Registry.open(tmp_path / "registry", now=clock.now) as reg:
        yield reg


def _db(registry: Registry) -> sqlite3.Connection:
    return sqlite3.connect(registry.directory / "cache.db")


def test_a_record_and_its_index_row_commit_or_roll_back_together(registry: Registry) -> None:
    class Abort(Exception):
        pass

    def write_then_fail() -> None:
        with registry._transaction():
            registry._store(VIDEO, VIDEO_INDEX, _video("lost", 1.0), previous=None)
            raise Abort

    with pytest.raises(Abort):
        write_then_fail()

    assert registry.get_video("lost") is None
    assert registry.list_videos() == []
    with _db(registry) as db:
        assert db.execute("SELECT COUNT(*) FROM sora_video").fetchone() == (0,)


def test_a_refused_duplicate_backend_id_leaves_the_index_as_it_was(registry: Registry) -> None:
    registry.record_intent(_video("a", 1.0))
    registry.record_intent(_video("b", 2.0))
    registry.record_submitted("a", video_id="video_1", status="queued", progress=0, remote_created_at=None)

    with pytest.raises(RegistryError):
        registry.record_submitted(
            "b", video_id="video_1", status="completed", progress=0, remote_created_at=None
        )

    assert _ids(registry.list_videos(status="completed")) == []
    assert _ids(registry.list_videos(status="submitting")) == ["b"]


def test_text_filters_match_any_part_of_prompt_or_note_in_any_case(registry: Registry) -> None:
    registry.record_intent(_video("fox", 1.0, prompt='A red Fox says "hi"'))
    registry.record_intent(_video("note", 2.0, prompt="snow", note="client FOX spot"))
    registry.record_intent(_video("other", 3.0, prompt="a heron"))

    assert _ids(registry.list_videos(text="fox")) == ["note", "fox"]
    assert _ids(registry.list_videos(text="ox")) == ["note", "fox"]  # shorter than a trigram
    assert _ids(registry.list_videos(text='says "hi')) == ["fox"]
    assert _ids(registry.list_videos(text="ERON")) == ["other"]
    assert _ids(registry.list_videos(text="zebra")) == []


def test_children_are_found_by_the_parents_backend_id_or_local_id_oldest_first(registry: Registry) -> None:
    registry.record_intent(_video("p", 1.0))
    parent = registry.record_submitted(
        "p", video_id="video_p", status="completed", progress=100, remote_created_at=None
    )
    registry.record_intent(_video("late", 5.0, parent_id="video_p", relation="extension"))
    registry.record_intent(_video("early", 3.0, parent_id="p", relation="remix"))
    registry.record_intent(_video("unrelated", 4.0, parent_id="video_x", relation="remix"))

    assert _ids(registry.children(parent)) == ["early", "late"]


def test_changes_move_a_record_between_filters(registry: Registry) -> None:
    registry.record_intent(_video("a", 1.0, character_ids=["char_1"], batch_id="b1"))
    registry.update_video(
        "a", status="completed", character_ids=["char_2"], model="sora-2-pro", batch_id=None
    )

    assert _ids(registry.list_videos(status="completed", model="sora-2-pro", character_id="char_2")) == ["a"]
    assert registry.list_videos(character_id="char_1") == []
    assert registry.list_videos(batch_id="b1") == []
    assert registry.unfinished_videos() == []


def test_a_record_written_by_another_program_is_indexed_on_the_next_open(tmp_path: Path) -> None:
    folder = tmp_path / "registry"
    with Registry.open(folder) as registry:
        registry.record_intent(_video("a", 1.0))
    with diskcache.Cache(str(folder)) as plain:
        plain.set("video:b", _video("b", 2.0, prompt="a kite").model_dump_json())

    with Registry.open(folder) as registry:
        assert _ids(registry.list_videos(text="kite")) == ["b"]
        assert _ids(registry.list_videos()) == ["b", "a"]


def test_open_batches_are_the_unfinished_ones_oldest_first(registry: Registry) -> None:
    for n, finished in ((1, None), (2, 9.0), (3, None)):
        registry.put_batch(
            BatchRecord(
                local_id=f"b{n}",
                backend="emulator",
                mode="direct",
                status="in_progress",
                created_at=float(n),
                updated_at=float(n),
                finished_at=finished,
            )
        )
    registry.update_batch("b3", finished_at=10.0)

    assert [b.local_id for b in registry.open_batches()] == ["b1"]


@pytest.mark.parametrize(
    "damage",
    [
        "DROP TABLE sora_video",
        "DROP TABLE sora_video_text",
        "DROP TABLE sora_index_state",
        "UPDATE sora_index_state SET cache_count = 0",
    ],
)
def test_a_missing_or_stale_index_is_rebuilt_from_the_records_on_open(tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "registry"
    with Registry.open(folder) as registry:
        registry.record_intent(_video("a", 1.0, prompt="a heron", character_ids=["c1"]))
        registry.record_intent(_video("b", 2.0, status="queued"))
        registry.put_batch(
            BatchRecord(
                local_id="b1", backend="emulator", mode="direct", status="x", created_at=1.0, updated_at=1.0
            )
        )
        expected = (_ids(registry.list_videos()), _ids(registry.unfinished_videos()))
    with sqlite3.connect(folder / "cache.db") as db:
        db.execute(damage)

    with Registry.open(folder) as registry:
        assert (_ids(registry.list_videos()), _ids(registry.unfinished_videos())) == expected
        assert _ids(registry.list_videos(text="heron", character_id="c1")) == ["a"]
        assert [b.local_id for b in registry.open_batches()] == ["b1"]
        assert registry.spent_since(0.0) == pytest.approx(0.8)
