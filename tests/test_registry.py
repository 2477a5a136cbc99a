from __future__ import annotations

import multiprocessing
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import diskcache
import pytest

from sora_mcp.clock import FakeClock
from sora_mcp.errors import RegistryError
from sora_mcp.registry.postgres import PostgresRegistry
from sora_mcp.registry.records import BatchRecord, CharacterRecord, VideoRecord
from sora_mcp.registry.store import Registry


def _video(local_id: str, *, created_at: float = 1_000.0, **fields: Any) -> VideoRecord:
    base: dict[str, Any] = {
        "local_id": local_id,
        "backend": "emulator",
        "model": "sora-2",
        "prompt": f"a lighthouse at dusk ({local_id})",
        "size": "720x1280",
        "seconds": 4,
        "created_at": created_at,
        "updated_at": created_at,
    }
    return VideoRecord.model_validate(base | fields)


def _batch(local_id: str, *, created_at: float = 1_000.0, **fields: Any) -> BatchRecord:
    base: dict[str, Any] = {
        "local_id": local_id,
        "backend": "emulator",
        "mode": "native",
        "status": "validating",
        "created_at": created_at,
        "updated_at": created_at,
    }
    return BatchRecord.model_validate(base | fields)


def _stored_setting(directory: Path, key: str) -> object:
    with sqlite3.connect(directory / "cache.db") as db:
        ((value,),) = db.execute("SELECT value FROM Settings WHERE key = ?", (key,)).fetchall()
    return value


@pytest.fixture(params=["diskcache", "postgres"])
def registry(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Registry]:
    """Each test runs against both stores: the embedded one and PostgreSQL."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        with PostgresRegistry.open(url, now=clock.now) as pg:
            yield pg  # type: ignore[misc]
        return
    with Registry.open(tmp_path / "registry", now=clock.now) as reg:
        yield reg


def test_an_intent_round_trips_by_local_id(registry: Registry) -> None:
    rec = _video("a1", files={"video": "/tmp/a1.mp4"}, character_ids=["char_1"])

    registry.record_intent(rec)

    assert registry.get_video("a1") == rec
    assert registry.get_video("nope") is None


def test_recording_the_submission_makes_the_video_findable_by_backend_id(
    registry: Registry, clock: FakeClock
) -> None:
    registry.record_intent(_video("a1"))
    clock.advance(5)

    rec = registry.record_submitted(
        "a1", video_id="video_123", status="queued", progress=0, remote_created_at=1_001
    )

    assert (rec.id, rec.status, rec.remote_created_at, rec.updated_at) == (
        "video_123",
        "queued",
        1_001,
        clock.now(),
    )
    assert registry.get_video("video_123") == rec
    assert registry.get_video("a1") == rec


def test_records_survive_close_and_reopen(tmp_path: Path) -> None:
    with Registry.open(tmp_path) as reg:
        reg.record_intent(_video("a1"))
        reg.record_submitted("a1", video_id="video_1", status="queued", progress=0, remote_created_at=None)
        reg.put_character(
            CharacterRecord(id="char_1", name="Mochi", backend="emulator", source="x", created_at=1)
        )
        reg.put_batch(_batch("b1", id="batch_1"))

    with Registry.open(tmp_path) as reg:
        video = reg.get_video("video_1")
        assert video is not None
        assert video.local_id == "a1"
        assert reg.get_character("Mochi") is not None
        batch = reg.get_batch("batch_1")
        assert batch is not None
        assert batch.local_id == "b1"


def test_update_video_changes_fields_by_backend_id_and_bumps_updated_at(
    registry: Registry, clock: FakeClock
) -> None:
    registry.record_intent(_video("a1"))
    registry.record_submitted("a1", video_id="video_1", status="queued", progress=0, remote_created_at=None)
    clock.advance(30)

    rec = registry.update_video("video_1", status="completed", progress=100, files={"video": "/v.mp4"})

    assert (rec.status, rec.progress, rec.files, rec.updated_at) == (
        "completed",
        100,
        {"video": "/v.mp4"},
        clock.now(),
    )
    assert registry.get_video("a1") == rec


def test_update_video_refuses_unknown_fields_bad_values_and_missing_records(registry: Registry) -> None:
    registry.record_intent(_video("a1"))

    with pytest.raises(RegistryError):
        registry.update_video("a1", colour="red")
    with pytest.raises(RegistryError):
        registry.update_video("a1", status="exploded")
    with pytest.raises(RegistryError):
        registry.update_video("a1", seconds="4")
    with pytest.raises(RegistryError):
        registry.update_video("a1", local_id="other")
    with pytest.raises(RegistryError):
        registry.update_video("missing", status="failed")
    assert registry.get_video("a1") == _video("a1")


def test_changing_the_backend_id_moves_the_index(registry: Registry) -> None:
    registry.record_intent(_video("a1"))
    registry.record_submitted("a1", video_id="video_old", status="queued", progress=0, remote_created_at=None)

    registry.update_video("a1", id="video_new")

    assert registry.get_video("video_old") is None
    found = registry.get_video("video_new")
    assert found is not None
    assert found.local_id == "a1"


def test_a_local_id_or_backend_id_cannot_be_recorded_twice(registry: Registry) -> None:
    registry.record_intent(_video("a1"))
    registry.record_intent(_video("a2"))
    registry.record_submitted("a1", video_id="video_1", status="queued", progress=0, remote_created_at=None)

    with pytest.raises(RegistryError):
        registry.record_intent(_video("a1"))
    with pytest.raises(RegistryError):
        registry.record_submitted(
            "a2", video_id="video_1", status="queued", progress=0, remote_created_at=None
        )
    assert registry.get_video("a2") == _video("a2")


def test_mutate_video_applies_a_function_of_the_stored_record(registry: Registry) -> None:
    registry.record_intent(_video("a1", files={"video": "/v.mp4"}))

    rec = registry.mutate_video(
        "a1", lambda r: r.model_copy(update={"files": r.files | {"thumbnail": "/t.webp"}})
    )

    assert rec.files == {"video": "/v.mp4", "thumbnail": "/t.webp"}
    with pytest.raises(RegistryError):
        registry.mutate_video("a1", lambda r: r.model_copy(update={"local_id": "other"}))
    with pytest.raises(RegistryError):
        registry.mutate_video("a1", lambda r: r.model_copy(update={"progress": "lots"}))


def _increment_progress(directory: str, key: str, times: int) -> None:
    with Registry.open(Path(directory)) as reg:
        for _ in range(times):
            reg.mutate_video(key, lambda r: r.model_copy(update={"progress": r.progress + 1}))


def test_eight_processes_incrementing_one_record_lose_no_update(tmp_path: Path) -> None:
    with Registry.open(tmp_path) as reg:
        reg.record_intent(_video("a1"))
        reg.record_submitted(
            "a1", video_id="video_1", status="in_progress", progress=0, remote_created_at=None
        )

    spawn = multiprocessing.get_context("spawn")
    workers = [
        spawn.Process(target=_increment_progress, args=(str(tmp_path), "video_1", 25)) for _ in range(8)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)

    assert [worker.exitcode for worker in workers] == [0] * 8
    with Registry.open(tmp_path) as reg:
        rec = reg.get_video("a1")
    assert rec is not None
    assert rec.progress == 8 * 25


def test_list_videos_filters_and_orders_newest_first(registry: Registry) -> None:
    registry.record_intent(
        _video("old", created_at=1.0, prompt="A red Fox in snow", character_ids=["char_1"])
    )
    registry.record_intent(
        _video("mid", created_at=2.0, model="sora-2-pro", parent_id="video_0", relation="remix")
    )
    registry.record_intent(_video("new", created_at=3.0, batch_id="b1", note="client FOX spot"))
    registry.update_video("mid", status="completed")

    def ids(recs: list[VideoRecord]) -> list[str]:
        return [rec.local_id for rec in recs]

    assert ids(registry.list_videos()) == ["new", "mid", "old"]
    assert ids(registry.list_videos(limit=2)) == ["new", "mid"]
    assert ids(registry.list_videos(status="completed")) == ["mid"]
    assert ids(registry.list_videos(model="sora-2")) == ["new", "old"]
    assert ids(registry.list_videos(text="fox")) == ["new", "old"]
    assert ids(registry.list_videos(parent_id="video_0")) == ["mid"]
    assert ids(registry.list_videos(batch_id="b1")) == ["new"]
    assert ids(registry.list_videos(character_id="char_1")) == ["old"]
    assert ids(registry.list_videos(text="fox", model="sora-2-pro")) == []


def test_unfinished_videos_are_the_ones_to_resume_oldest_first(registry: Registry) -> None:
    statuses = ["submitting", "queued", "in_progress", "unknown", "completed", "failed", "deleted"]
    for n, status in enumerate(statuses):
        registry.record_intent(_video(status, created_at=float(10 - n), status=status))

    assert [rec.status for rec in registry.unfinished_videos()] == [
        "unknown",
        "in_progress",
        "queued",
        "submitting",
    ]


def test_characters_are_found_by_id_or_name(registry: Registry) -> None:
    older = CharacterRecord(id="char_1", name="Mochi", backend="emulator", source="cat.mp4", created_at=1)
    newer = CharacterRecord(id="char_2", name="Mochi", backend="emulator", source="cat2.mp4", created_at=2)
    other = CharacterRecord(id="char_3", name="Biscuit", backend="emulator", source="dog.mp4", created_at=3)
    for rec in (older, newer, other):
        registry.put_character(rec)

    assert registry.get_character("char_1") == older
    assert registry.get_character("Mochi") == newer
    assert registry.get_character("biscuit") == other
    assert registry.get_character("Rex") is None
    assert registry.list_characters() == [other, newer, older]


def test_a_renamed_character_is_found_by_its_new_name_only(registry: Registry) -> None:
    registry.put_character(
        CharacterRecord(id="c1", name="Mochi", backend="emulator", source="a", created_at=1)
    )
    renamed = CharacterRecord(id="c1", name="Tofu", backend="emulator", source="a", created_at=1)

    registry.put_character(renamed)

    assert registry.get_character("tofu") == renamed
    assert registry.get_character("Mochi") is None


def test_batches_are_stored_updated_and_found_by_either_id(registry: Registry, clock: FakeClock) -> None:
    registry.put_batch(_batch("b1", created_at=1.0, items={"line-1": "a1"}))
    registry.put_batch(_batch("b2", created_at=2.0, mode="direct"))
    clock.advance(60)

    updated = registry.update_batch("b1", id="batch_9", status="in_progress")

    assert updated.updated_at == clock.now()
    assert registry.get_batch("batch_9") == updated
    assert registry.get_batch("b1") == updated
    assert [b.local_id for b in registry.list_batches()] == ["b2", "b1"]
    with pytest.raises(RegistryError):
        registry.update_batch("b2", mode="sideways")


def test_opening_a_folder_set_to_evict_forces_the_policy_to_none(tmp_path: Path) -> None:
    diskcache.Cache(str(tmp_path), eviction_policy="least-recently-stored", size_limit=1).close()
    assert _stored_setting(tmp_path, "eviction_policy") == "least-recently-stored"

    with Registry.open(tmp_path) as reg:
        for n in range(20):
            reg.record_intent(_video(f"v{n}", prompt="x" * 1_000))

        assert _stored_setting(tmp_path, "eviction_policy") == "none"
        assert len(reg.list_videos(limit=100)) == 20


def test_a_pickled_row_is_refused_without_being_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[Any, tuple[str]]:
            return (os.mkdir, (str(marker),))

    with Registry.open(tmp_path / "reg") as reg:
        reg.record_intent(_video("good"))
    with diskcache.Cache(str(tmp_path / "reg")) as plain:
        plain.set("video:evil", Exploit())

    with Registry.open(tmp_path / "reg") as reg:
        with pytest.raises(RegistryError):
            reg.get_video("evil")
        # Left out of the index, so listing shows the readable records only.
        assert [rec.local_id for rec in reg.list_videos()] == ["good"]
        assert reg.get_video("good") is not None
    assert not marker.exists()

    # The planted row really was dangerous: diskcache's default reader runs it.
    with diskcache.Cache(str(tmp_path / "reg")) as plain:
        plain.get("video:evil")
    assert marker.exists()


def test_a_pickled_key_is_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[Any, tuple[str]]:
            return (os.mkdir, (str(marker),))

    with Registry.open(tmp_path / "reg") as reg:
        reg.record_intent(_video("good"))
    with diskcache.Cache(str(tmp_path / "reg")) as plain:
        plain.set(Exploit(), "{}")

    with Registry.open(tmp_path / "reg") as reg:
        assert [rec.local_id for rec in reg.list_videos()] == ["good"]
        assert (reg.list_characters(), reg.list_batches()) == ([], [])
    assert not marker.exists()


def test_a_new_registry_folder_is_owner_only(tmp_path: Path) -> None:
    folder = tmp_path / "deep" / "registry"

    Registry.open(folder).close()

    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_an_existing_world_readable_folder_is_tightened_to_owner_only(tmp_path: Path) -> None:
    folder = tmp_path / "registry"
    folder.mkdir()
    folder.chmod(0o755)

    Registry.open(folder).close()

    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_a_file_where_the_folder_should_be_is_refused(tmp_path: Path) -> None:
    (tmp_path / "registry").write_text("not a folder")

    with pytest.raises(RegistryError):
        Registry.open(tmp_path / "registry")
