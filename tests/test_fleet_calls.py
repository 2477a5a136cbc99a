"""What the fleet remembers of tool calls, across real `sora-mcp serve --transport http`
processes: create_character's idempotency key (the same call reaching several replicas at once,
on one PostgreSQL registry or on one shared embedded registry folder, uploads the clip once and
every replica answers the one character; uploads are counted by a relay in front of the
standalone emulator), and the spending confirmation token of a client without elicitation
(issued by one replica, redeemed once on another)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from fleet_relay import relay
from helpers import error_code, structured, tool_error
from procs import child_env
from test_fleet import API_KEY, CLIP, Replica, _backend_jobs, _call, _emulator, _process, _replicas
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


async def test_a_confirm_token_issued_by_one_replica_is_redeemed_once_on_another(
    tmp_path: Path, postgres_url: str
) -> None:
    with (
        _emulator(tmp_path) as backend,
        _replicas(tmp_path, postgres_url, 2, backend, SORA_MCP_CONFIRM_ABOVE_USD="0.10") as replicas,
    ):
        with anyio.fail_after(120):
            quoted = await _call(replicas[0].url, "generate", CLIP)  # this client cannot be asked
            token = tool_error(quoted)["confirm_token"]
            confirmed = structured(await _call(replicas[1].url, "generate", {**CLIP, "confirm_token": token}))
            reused = await _call(replicas[0].url, "generate", {**CLIP, "confirm_token": token})
        jobs = _backend_jobs(backend)

    assert error_code(quoted)[0] == "confirmation_needed" and token.startswith("cfm_")
    assert [v["id"] for v in confirmed["videos"]] == [job["id"] for job in jobs]
    assert error_code(reused)[0] == "token_unknown"
    assert len(jobs) == 1
