"""The registry's schema version: new folders are stamped, older ones migrated (from a folder the
released sora-mcp wrote, in tests/fixtures), newer or unreadable ones refused and left as they are."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import time
from pathlib import Path
from typing import Any

import diskcache
import pytest

from sora_mcp.errors import RegistryError
from sora_mcp.registry import schema
from sora_mcp.registry.records import BatchRecord, CharacterRecord, VideoRecord
from sora_mcp.registry.store import SCHEMA_VERSION, Registry

FIXTURES = Path(__file__).parent / "fixtures"


def _released_registry(tmp_path: Path) -> Path:
    """A copy of the registry written by the released code (schema 1), safe to migrate."""
    target = tmp_path / "registry"
    shutil.copytree(FIXTURES / "registry_v1", target)
    return target


def _released_records() -> dict[str, Any]:
    export: dict[str, Any] = json.loads((FIXTURES / "registry_v1.json").read_text())
    assert export["schema_version"] == 1
    return export


def _stored(directory: Path, key: str) -> Any:
    with diskcache.Cache(str(directory)) as plain:
        raw = plain.get(key)
    return None if raw is None else json.loads(raw)


def test_a_registry_written_by_the_released_version_opens_migrated_with_every_record(tmp_path: Path) -> None:
    folder = _released_registry(tmp_path)
    export = _released_records()

    with Registry.open(folder, now=lambda: 5_000.0) as reg:
        videos = reg.list_videos(limit=1_000)
        characters = reg.list_characters()
        batches = reg.list_batches()
        by_backend_id = reg.get_video("video_b")
        native = reg.get_batch("batch_n")
        named = reg.get_character("ava")

    # Fields added since (v4: a fallback's label, its stitch source, a reference frame) read as defaults.
    added = {"fallback": None, "stitch_onto": None}
    assert [v.model_dump(mode="json") for v in videos] == [{**row, **added} for row in export["videos"]]
    assert [c.model_dump(mode="json") for c in characters] == [
        {**row, "reference": None} for row in export["characters"]
    ]
    assert [b.model_dump(mode="json") for b in batches] == export["batches"]
    assert by_backend_id is not None and by_backend_id.local_id == "b"
    assert native is not None and native.items == {"shot-1": "n1", "shot-2": "n2"}
    assert named is not None and named.id == "char_ava"
    assert _stored(folder, "meta:schema_version") == SCHEMA_VERSION
    assert _stored(folder, "meta:migrations") == [
        {"from": 1, "to": 2, "at": 5_000.0},
        {"from": 2, "to": 3, "at": 5_000.0},
        {"from": 3, "to": 4, "at": 5_000.0},
    ]
    assert _stored(folder, "cname:bo") == ["char_bo"]


def test_a_migrated_registry_takes_new_records_and_opens_again_without_migrating(tmp_path: Path) -> None:
    folder = _released_registry(tmp_path)
    with Registry.open(folder, now=lambda: 5_000.0) as reg:
        reg.put_character(
            CharacterRecord(id="char_cy", name="Cy", backend="emulator", source="x", created_at=9)
        )
        reg.update_video("video_b", status="completed", progress=100)

    with Registry.open(folder, now=lambda: 6_000.0) as reg:
        found = reg.get_character("CY")
        b = reg.get_video("b")

    assert found is not None and found.id == "char_cy"
    assert b is not None and b.status == "completed"
    assert [h["at"] for h in _stored(folder, "meta:migrations")] == [5_000.0, 5_000.0, 5_000.0]


def test_a_migration_step_that_fails_changes_nothing(tmp_path: Path) -> None:
    folder = _released_registry(tmp_path)
    with diskcache.Cache(str(folder)) as plain:
        plain.set("char:broken", json.dumps({"id": "broken"}))

    with pytest.raises(RegistryError) as caught:
        Registry.open(folder)

    assert "migrated from schema version 1 to 2" in str(caught.value)
    assert _stored(folder, "meta:schema_version") == 1
    assert _stored(folder, "meta:migrations") is None
    assert _stored(folder, "cname:ava") is None


def _open_slowly(folder: str, start: Any, runs: str) -> None:
    # Each migration step takes a while here, so two unlocked migrations would surely overlap;
    # every run of a step is logged to `runs`.
    real = dict(schema.MIGRATIONS)

    def slow(step: int) -> Any:
        def run(cache: diskcache.Cache) -> None:
            with open(runs, "a") as log:
                log.write(f"{step}\n")
            time.sleep(0.5)
            real[step](cache)

        return run

    schema.MIGRATIONS.update({step: slow(step) for step in real})
    start.wait(timeout=60)
    Registry.open(Path(folder)).close()


def test_two_processes_opening_an_old_registry_at_once_migrate_it_once(tmp_path: Path) -> None:
    folder = _released_registry(tmp_path)
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Event()
    runs = tmp_path / "runs.log"
    workers = [spawn.Process(target=_open_slowly, args=(str(folder), start, str(runs))) for _ in range(2)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=120)

    assert [worker.exitcode for worker in workers] == [0, 0]
    assert runs.read_text().split() == ["1", "2", "3"]
    history = _stored(folder, "meta:migrations")
    assert [(h["from"], h["to"]) for h in history] == [(1, 2), (2, 3), (3, 4)]
    with Registry.open(folder) as reg:
        assert len(reg.list_videos(limit=1_000)) == len(_released_records()["videos"])


def test_a_missing_schema_version_is_initialised(tmp_path: Path) -> None:
    with Registry.open(tmp_path):
        pass

    assert _stored(tmp_path, "meta:schema_version") == SCHEMA_VERSION


def test_a_registry_from_a_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    with diskcache.Cache(str(tmp_path)) as plain:
        plain.set("meta:schema_version", str(SCHEMA_VERSION + 1))
        plain.set("video:new", '{"from": "the future"}')

    with pytest.raises(RegistryError) as caught:
        Registry.open(tmp_path)

    assert str(SCHEMA_VERSION + 1) in str(caught.value)
    assert _stored(tmp_path, "meta:schema_version") == SCHEMA_VERSION + 1
    assert _stored(tmp_path, "video:new") == {"from": "the future"}


def test_a_registry_older_than_any_migration_is_refused_with_a_message_and_left_untouched(
    tmp_path: Path,
) -> None:
    old_row = '{"local_id": "old", "status": "whatever an older schema wrote"}'
    with diskcache.Cache(str(tmp_path)) as plain:
        plain.set("meta:schema_version", "0")
        plain.set("video:old", old_row)

    with pytest.raises(RegistryError) as caught:
        Registry.open(tmp_path)

    assert "older" in str(caught.value) and "version 0" in str(caught.value)
    with diskcache.Cache(str(tmp_path)) as plain:
        assert plain.get("meta:schema_version") == "0"
        assert plain.get("video:old") == old_row


def test_a_registry_with_records_but_no_schema_version_is_refused_not_stamped(tmp_path: Path) -> None:
    with diskcache.Cache(str(tmp_path)) as plain:
        plain.set("video:old", "{}")

    with pytest.raises(RegistryError):
        Registry.open(tmp_path)

    assert _stored(tmp_path, "meta:schema_version") is None


@pytest.mark.parametrize("raw", ["true", "1.0", '"1"', "null", "[1]"])
def test_a_schema_version_that_is_not_an_integer_is_refused(tmp_path: Path, raw: str) -> None:
    with diskcache.Cache(str(tmp_path)) as plain:
        plain.set("meta:schema_version", raw)

    with pytest.raises(RegistryError) as caught:
        Registry.open(tmp_path)
    assert raw in str(caught.value)


def test_the_fixture_records_are_valid_records_of_today(tmp_path: Path) -> None:
    # Guards the comparison above: the export must parse with today's strict models.
    export = _released_records()
    assert all(VideoRecord.model_validate(v) for v in export["videos"])
    assert all(CharacterRecord.model_validate(c) for c in export["characters"])
    assert all(BatchRecord.model_validate(b) for b in export["batches"])
