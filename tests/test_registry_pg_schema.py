"""The PostgreSQL registry's schema moves forward in place: a database an older sora-mcp wrote is
migrated on open with every record kept, concurrent openers run each step once, and a database
from a newer sora-mcp is refused untouched. Real PostgreSQL (tests/pg.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import psycopg
import pytest

from sora_mcp.errors import RegistryError
from sora_mcp.registry.postgres import PostgresRegistry
from sora_mcp.registry.postgres_schema import _V1, MIGRATIONS, SCHEMA_VERSION
from sora_mcp.registry.records import CharacterRecord, VideoRecord


def _written_by_version(url: str, version: int) -> None:
    """The database a sora-mcp of schema `version` leaves: created at v1 and migrated up to it
    (every database takes that path), holding one video and one character."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute(_V1)
        for step in range(1, version):
            conn.execute(MIGRATIONS[step])
        conn.execute("INSERT INTO sora_meta (key, value) VALUES ('schema_version', %s)", (str(version),))
        conn.execute(
            "INSERT INTO videos (local_id, id, backend, model, prompt, size, seconds, status, progress,"
            " relation, created_at, updated_at, estimated_cost_usd) VALUES ('local_1', 'video_1', 'emulator', 'sora-2',"
            " 'a heron lands', '720x1280', 4, 'completed', 100, 'generate', 1000, 1000, 0.4)"
        )
        conn.execute(
            "INSERT INTO characters (id, name, name_folded, backend, source, created_at)"
            " VALUES ('char_1', 'Pip', 'pip', 'emulator', 'a clip', 1000)"
        )


def _version(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT value FROM sora_meta WHERE key = 'schema_version'").fetchone()
    assert row is not None
    return str(row[0])


def _migrations(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT key FROM sora_meta WHERE key LIKE 'migrated_%' ORDER BY key").fetchall()
    return [str(row[0]) for row in rows]


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_an_older_database_is_migrated_on_open_and_keeps_every_record(
    postgres_url: str, version: int
) -> None:
    _written_by_version(postgres_url, version)

    with PostgresRegistry.open(postgres_url) as registry:
        video = registry.get_video("video_1")
        character = registry.get_character("Pip")
        taken = registry.begin_character("pip-key")  # a table the newest version added

    assert isinstance(video, VideoRecord) and video.prompt == "a heron lands" and video.status == "completed"
    assert isinstance(character, CharacterRecord) and character.id == "char_1"
    assert taken.fresh
    assert _version(postgres_url) == str(SCHEMA_VERSION)
    assert _migrations(postgres_url) == [f"migrated_{n}_to_{n + 1}" for n in range(version, SCHEMA_VERSION)]


def test_four_processes_opening_an_old_database_at_once_run_each_step_once(postgres_url: str) -> None:
    _written_by_version(postgres_url, 1)
    start = Barrier(4)

    def open_it(_: int) -> str:
        start.wait()
        with PostgresRegistry.open(postgres_url, pool_size=1) as registry:
            found = registry.get_video("local_1")
        return found.local_id if found else ""

    with ThreadPoolExecutor(4) as pool:
        opened = list(pool.map(open_it, range(4)))

    assert opened == ["local_1"] * 4
    assert _migrations(postgres_url) == [f"migrated_{n}_to_{n + 1}" for n in range(1, SCHEMA_VERSION)]


def test_a_database_from_a_newer_sora_mcp_is_refused_untouched(postgres_url: str) -> None:
    _written_by_version(postgres_url, SCHEMA_VERSION)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE sora_meta SET value = %s WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
        )

    with pytest.raises(RegistryError, match=f"schema version {SCHEMA_VERSION + 1}"):
        PostgresRegistry.open(postgres_url)

    assert _version(postgres_url) == str(SCHEMA_VERSION + 1)
