"""Emulator profiles: each server's documented differences, reproduced over the same HTTP path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from starlette.applications import Starlette

from procs import child_env, serving
from sora_mcp.clock import FakeClock
from sora_mcp.config import PROFILE_NAMES
from sora_mcp.emulator.app import create_app
from sora_mcp.emulator.profiles import EMULATOR_PROFILES

pytestmark = pytest.mark.anyio

CREATE = {"model": "sora-2", "prompt": "a paper boat on a pond", "seconds": "4", "size": "720x1280"}


@asynccontextmanager
async def emulator(
    tmp_path: Path, profile: str, clock: FakeClock, api_key: str | None = None
) -> AsyncIterator[tuple[httpx2.AsyncClient, Starlette]]:
    app = create_app(root=tmp_path / "emu", clock=clock, render_fps=4, profile=profile, api_key=api_key)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://emu/v1"
    ) as client:
        yield client, app


async def completed(client: httpx2.AsyncClient, clock: FakeClock, **body: object) -> str:
    created = await client.post("/videos", json={**CREATE, **body})
    assert created.status_code == 200, created.text
    clock.advance(3600)
    return str(created.json()["id"])


def test_every_profile_name_has_an_emulator_profile() -> None:
    assert set(PROFILE_NAMES) <= set(EMULATOR_PROFILES)


async def test_litellm_ids_are_long_base64_and_the_ids_of_later_answers_cannot_be_routed(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with emulator(tmp_path, "litellm", clock) as (client, _):
        video_id = await completed(client, clock)
        assert video_id.startswith("video_") and len(video_id) >= 150
        got = await client.get(f"/videos/{video_id}")
        assert got.status_code == 200 and got.json()["status"] == "completed"
        assert "prompt" not in got.json()
        forgotten = got.json()["id"]
        assert forgotten != video_id
        assert (await client.get(f"/videos/{forgotten}")).status_code == 500
        assert (await client.get("/videos/video_unknown")).status_code == 500


async def test_litellm_ignores_variant_has_no_delete_or_list_and_renames_headers(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with emulator(tmp_path, "litellm", clock) as (client, app):
        video_id = await completed(client, clock)
        thumb = await client.get(f"/videos/{video_id}/content", params={"variant": "thumbnail"})
        assert thumb.status_code == 200 and thumb.content[4:8] == b"ftyp"
        assert (await client.delete(f"/videos/{video_id}")).status_code == 405
        assert (await client.get("/videos")).status_code == 500
        app.state.faults.inject(429, retry_after=3, methods=["GET"])
        limited = await client.get(f"/videos/{video_id}")
        assert limited.status_code == 429
        assert limited.headers["llm_provider-retry-after"] == "3"
        assert limited.headers["llm_provider-retry-after-ms"] == "3000"
        assert "retry-after" not in limited.headers
        assert "x-request-id" not in limited.headers
        ok = await client.get(f"/videos/{video_id}")
        assert "openai-poll-after-ms" not in ok.headers
        assert ok.headers["x-litellm-version"].startswith("1.106")


@pytest.mark.parametrize("status", [500, 429])
async def test_litellm_resends_a_failed_billable_post_upstream_unless_told_not_to(
    tmp_path: Path, clock: FakeClock, status: int
) -> None:
    async with emulator(tmp_path, "litellm", clock) as (client, app):
        app.state.faults.inject(status, methods=["POST"], path="/videos")
        retried = await client.post("/videos", json=CREATE)
        assert retried.status_code == 200
        assert app.state.upstream.count("POST", "/videos") == 2
        app.state.faults.inject(status, methods=["POST"], path="/videos")
        once = await client.post("/videos", json=CREATE, headers={"x-litellm-num-retries": "0"})
        assert once.status_code == status
        assert app.state.upstream.count("POST", "/videos") == 3


async def test_litellm_characters_need_a_model_to_route_and_their_ids_work_in_a_create(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with emulator(tmp_path, "litellm", clock) as (client, _):
        video_id = await completed(client, clock)
        clip = (await client.get(f"/videos/{video_id}/content")).content
        parts: list[tuple[str, tuple[str | None, bytes | str, str | None]]] = [
            ("name", (None, "Mochi", None)),
            ("video", ("mochi.mp4", clip, "video/mp4")),
        ]
        assert (await client.post("/videos/characters", files=parts)).status_code == 500
        routed = [*parts, ("target_model_names", (None, "sora-2", None))]
        made = await client.post("/videos/characters", files=routed)
        assert made.status_code == 200, made.text
        character_id = made.json()["id"]
        assert character_id.startswith("character_") and len(character_id) > 100
        starring = await client.post(
            "/videos", json={**CREATE, "prompt": "Mochi naps", "characters": [{"id": character_id}]}
        )
        assert starring.status_code == 200, starring.text


async def test_bifrost_ids_carry_the_provider_and_models_must_name_it(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with emulator(tmp_path, "bifrost", clock) as (client, _):
        assert (await client.post("/videos", json=CREATE)).status_code == 400
        video_id = await completed(client, clock, model="openai/sora-2")
        assert video_id.endswith(":openai")
        assert (await client.get(f"/videos/{video_id}")).json()["status"] == "completed"
        assert (
            await client.post("/videos/edits", json={"prompt": "x", "video": {"id": video_id}})
        ).status_code == 404
        remix = await client.post(f"/videos/{video_id}/remix", json={"prompt": "at dusk"})
        assert remix.status_code == 200 and remix.json()["remixed_from_video_id"] == video_id


async def test_vllm_omni_takes_multipart_only_with_its_own_fields_and_integer_seconds(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with emulator(tmp_path, "vllm-omni", clock) as (client, _):
        refused = await client.post("/videos", json=CREATE)
        assert refused.status_code == 400
        form = [(k, (None, v, None)) for k, v in {**CREATE, "model": "Wan2.2-T2V", "seed": "7"}.items()]
        created = await client.post("/videos", files=form)
        assert created.status_code == 200, created.text
        body = created.json()
        assert body["id"].startswith("video_gen_") and body["seconds"] == 4
        clock.advance(3600)
        video_id = body["id"]
        assert (await client.post(f"/videos/{video_id}/remix", json={"prompt": "x"})).status_code == 404
        thumb = await client.get(f"/videos/{video_id}/content", params={"variant": "thumbnail"})
        assert thumb.content[4:8] == b"ftyp"
        assert (await client.delete(f"/videos/{video_id}")).status_code == 200


async def test_aquiles_says_processing_and_sglang_never_says_in_progress(
    tmp_path: Path, clock: FakeClock
) -> None:
    seen: dict[str, str] = {}
    for name in ("aquiles", "sglang"):
        async with emulator(tmp_path / name, name, clock) as (client, _):
            created = await client.post(
                "/videos", json={**CREATE, "seconds": 4} if name == "sglang" else CREATE
            )
            assert created.status_code == 200, created.text
            clock.advance(1.0)  # past the queued tenth of a 1.6 s render, before its end
            seen[name] = (await client.get(f"/videos/{created.json()['id']}")).json()["status"]
            if name == "sglang":
                clock.advance(3600)
                deleted = await client.delete(f"/videos/{created.json()['id']}")
                assert deleted.json()["status"] == "deleted"
    assert seen == {"aquiles": "processing", "sglang": "queued"}


async def test_openrouter_takes_its_own_body_and_answers_202_with_a_polling_url(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with emulator(tmp_path, "openrouter", clock) as (client, _):
        body = {
            "model": "sora-2",
            "prompt": "a kite",
            "duration": 4,
            "resolution": "720p",
            "aspect_ratio": "16:9",
        }
        created = await client.post("/videos", json=body)
        assert created.status_code == 202, created.text
        answer = created.json()
        assert answer["status"] == "pending" and answer["size"] == "1280x720" and answer["seconds"] == 4
        assert answer["polling_url"].endswith(f"/v1/videos/{answer['id']}")
        clock.advance(3600)
        content = await client.get(f"/videos/{answer['id']}/content", params={"index": 0})
        assert content.status_code == 200 and content.content[4:8] == b"ftyp"


async def test_azure_takes_the_key_in_an_api_key_header_and_a_deployment_name(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with emulator(tmp_path, "azure", clock, api_key="azure-key") as (client, _):
        headers = {"api-key": "azure-key"}
        params = {"api-version": "preview"}
        created = await client.post(
            "/videos", json={**CREATE, "model": "my-sora"}, headers=headers, params=params
        )
        assert created.status_code == 200, created.text
        assert (await client.post("/videos", json=CREATE)).status_code == 401
        edit = {"prompt": "x", "video": {"id": created.json()["id"]}}
        assert (await client.post("/videos/edits", json=edit, headers=headers)).status_code == 404


def test_the_standalone_emulator_takes_a_profile(tmp_path: Path) -> None:
    with serving(["emulator", "--profile", "litellm"], child_env(tmp_path)) as port:
        created = httpx2.post(f"http://127.0.0.1:{port}/v1/videos", json=CREATE, timeout=10)
    assert created.status_code == 200 and len(created.json()["id"]) >= 150
