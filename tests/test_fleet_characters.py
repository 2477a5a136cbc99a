"""create_character's idempotency key across real server processes: the same call reaching
several `sora-mcp serve --transport http` replicas at once, on one PostgreSQL registry or on one
shared embedded registry folder, uploads the clip once, and every replica answers the one
character. The uploads are counted by a relay in front of the standalone emulator."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from fleet_relay import relay
from helpers import structured
from procs import child_env
from test_fleet import API_KEY, Replica, _call, _emulator, _process, _replicas
from test_production import clip_file

pytestmark = pytest.mark.anyio

UPLOAD = ("POST", "/v1/videos/characters")


@contextmanager
def _sharing_one_folder(tmp_path: Path, count: int, backend: str, inputs: Path) -> Iterator[list[Replica]]:
    """`count` HTTP servers on one machine sharing one home, so one embedded registry."""
    env = child_env(
        tmp_path / "shared-home",
        400,
        SORA_MCP_BACKEND="remote",
        OPENAI_BASE_URL=backend,
        OPENAI_API_KEY=API_KEY,
        SORA_MCP_CONFIRM_ABOVE_USD="off",
        SORA_MCP_INPUT_DIRS=str(inputs),
    )
    with ExitStack() as stack:
        replicas = []
        for n in range(count):
            port, proc = stack.enter_context(
                _process(["serve", "--transport", "http"], env, tmp_path / f"server{n}.log")
            )
            replicas.append(Replica(f"http://127.0.0.1:{port}/mcp", proc))
        yield replicas


@pytest.mark.parametrize("registry", ["postgres", "diskcache"])
async def test_one_create_character_call_reaching_four_replicas_at_once_uploads_once(
    tmp_path: Path, registry: str, request: pytest.FixtureRequest
) -> None:
    inputs = tmp_path / "clips"
    clip = clip_file(inputs / "pip.mp4", 3.0)
    arguments: dict[str, Any] = {"name": "Pip", "clip_path": str(clip), "idempotency_key": "pip-take-1"}
    answers: list[dict[str, Any]] = []

    async def create(url: str) -> None:
        answers.append(structured(await _call(url, "create_character", arguments)))

    with _emulator(tmp_path) as upstream, relay(upstream) as (backend, counts), ExitStack() as stack:
        if registry == "postgres":
            url = request.getfixturevalue("postgres_url")
            replicas = stack.enter_context(
                _replicas(tmp_path, url, 4, backend, SORA_MCP_INPUT_DIRS=str(inputs))
            )
        else:
            replicas = stack.enter_context(_sharing_one_folder(tmp_path, 4, backend, inputs))
        with anyio.fail_after(120):
            async with anyio.create_task_group() as group:
                for replica in replicas:
                    group.start_soon(create, replica.url)
            later = structured(await _call(replicas[2].url, "create_character", arguments))
            listed = structured(await _call(replicas[3].url, "list_characters", {}))

    ids = {answer["character"]["id"] for answer in [*answers, later]}
    assert len(answers) == 4 and len(ids) == 1
    assert sum("already used" in answer["next_step"] for answer in answers) == 3
    assert [c["id"] for c in listed["characters"]] == list(ids)
    assert counts.requests[UPLOAD] == 1
