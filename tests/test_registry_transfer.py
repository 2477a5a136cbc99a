"""`sora-mcp registry export | import` moves a registry between stores without losing a field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from procs import child_env
from sora_mcp.errors import RegistryError
from sora_mcp.registry.postgres import PostgresRegistry
from sora_mcp.registry.records import BatchRecord, CharacterRecord, VideoRecord
from sora_mcp.registry.store import Registry
from sora_mcp.registry.transfer import export_lines, import_lines


def _fill(registry: Registry) -> None:
    base: dict[str, Any] = {"backend": "emulator", "model": "sora-2", "size": "720x1280", "seconds": 4}
    registry.record_intent(
        VideoRecord(
            local_id="v1", prompt="a lighthouse, ß and 灯台", created_at=10.5, updated_at=11.25, **base
        )
    )
    registry.record_submitted(
        "v1", video_id="video_1", status="completed", progress=100, remote_created_at=11
    )
    registry.update_video(
        "v1",
        files={"video": "/out/video_1.mp4", "thumbnail": "/out/video_1.webp"},
        completed_at=20,
        expires_at=86_420,
        character_ids=["char_2", "char_1"],
        estimated_cost_usd=0.4,
        note="first take",
    )
    registry.record_intent(
        VideoRecord(
            local_id="v2",
            prompt="the same lighthouse, at night",
            created_at=12.0,
            updated_at=12.0,
            status="unknown",
            parent_id="video_1",
            relation="remix",
            error_code="server_error",
            error_message="lost",
            image_reference="file:/in/frame.png",
            fallback="Sent as a remix because this backend has no edits.",
            stitch_onto="v1",
            **base,
        )
    )
    registry.record_intent(
        VideoRecord(
            local_id="v3",
            prompt="item",
            created_at=13.0,
            updated_at=13.0,
            status="pending",
            batch_id="b1",
            custom_id="shot-1",
            **base,
        )
    )
    registry.put_character(
        CharacterRecord(id="char_1", name="Ava", backend="emulator", source="clip.mp4", created_at=5.0)
    )
    registry.put_character(
        CharacterRecord(
            id="char_2",
            name="Bo",
            backend="emulator",
            source="bo.mp4",
            created_at=6.0,
            reference="/home/characters/char_2.png",
        )
    )
    registry.put_batch(
        BatchRecord(
            local_id="b1",
            backend="emulator",
            mode="direct",
            status="in_progress",
            created_at=13.0,
            updated_at=14.0,
            items={"shot-1": "v3"},
            estimated_cost_usd=0.4,
            input_path="/home/b1.jsonl",
        )
    )


def _everything(registry: Registry) -> tuple[object, ...]:
    return (
        sorted(registry.videos_since(float("-inf")), key=lambda r: r.local_id),
        registry.list_characters(),
        registry.list_batches(),
    )


def _cli(args: list[str], env: dict[str, str], stdin: bytes | None = None) -> bytes:
    done = subprocess.run(
        [sys.executable, "-m", "sora_mcp", "registry", *args],
        env=env,
        input=stdin,
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def test_a_registry_moves_to_postgresql_and_back_unchanged_through_the_command_line(
    tmp_path: Path, postgres_url: str
) -> None:
    source = tmp_path / "source"
    with Registry.open(source / "registry") as registry:
        _fill(registry)
        before = _everything(registry)

    exported = _cli(["export"], child_env(tmp_path, SORA_MCP_HOME=str(source)))
    _cli(["import"], child_env(tmp_path, SORA_MCP_REGISTRY_URL=postgres_url), stdin=exported)
    again = _cli(["export"], child_env(tmp_path, SORA_MCP_REGISTRY_URL=postgres_url))
    _cli(["import"], child_env(tmp_path, SORA_MCP_HOME=str(tmp_path / "back")), stdin=again)

    with PostgresRegistry.open(postgres_url) as pg:
        assert _everything(pg) == before  # type: ignore[arg-type]
    with Registry.open(tmp_path / "back" / "registry") as back:
        assert _everything(back) == before
    assert again == exported


def test_importing_twice_adds_nothing_and_a_different_record_is_refused(tmp_path: Path) -> None:
    with Registry.open(tmp_path / "a") as source, Registry.open(tmp_path / "b") as target:
        _fill(source)
        lines = list(export_lines(source))
        first = import_lines(target, lines)
        second = import_lines(target, lines)
        target.update_video("v2", note="changed here")

        with pytest.raises(RegistryError, match="different VideoRecord 'v2'"):
            import_lines(target, lines)

    assert (first.added, first.unchanged) == (6, 0)
    assert (second.added, second.unchanged) == (0, 6)


def test_a_stream_that_is_not_an_export_is_refused(tmp_path: Path) -> None:
    with (
        Registry.open(tmp_path / "a") as target,
        pytest.raises(RegistryError, match="not a sora-mcp registry export"),
    ):
        import_lines(target, ['{"video": {}}'])
