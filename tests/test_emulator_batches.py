"""Files and batches over ASGI: each line a video job, results as JSONL files."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from sora_mcp import catalog
from sora_mcp.clock import FakeClock
from sora_mcp.emulator.app import create_app

RENDER = catalog.estimate_render_seconds("sora-2", 8) / 20


@pytest.fixture
async def client(tmp_path: Path, clock: FakeClock) -> AsyncIterator[httpx2.AsyncClient]:
    app = create_app(root=tmp_path / "emulator", clock=clock)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://emulator/v1"
    ) as client:
        yield client


def line(custom_id: str, **body: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/videos", "body": body}


async def upload_jsonl(client: httpx2.AsyncClient, lines: list[Any]) -> str:
    content = "".join((json.dumps(item) if not isinstance(item, str) else item) + "\n" for item in lines)
    response = await client.post(
        "/files",
        data={"purpose": "batch"},
        files={"file": ("batch.jsonl", content.encode(), "application/jsonl")},
    )
    assert response.status_code == 200, response.text
    uploaded = response.json()
    assert (uploaded["object"], uploaded["bytes"], uploaded["purpose"]) == ("file", len(content), "batch")
    file_id: str = uploaded["id"]
    return file_id


async def start(client: httpx2.AsyncClient, file_id: str) -> dict[str, Any]:
    response = await client.post(
        "/batches",
        json={
            "input_file_id": file_id,
            "endpoint": "/v1/videos",
            "completion_window": "24h",
            "metadata": {"k": "v"},
        },
    )
    assert response.status_code == 200, response.text
    batch: dict[str, Any] = response.json()
    return batch


async def jsonl(client: httpx2.AsyncClient, file_id: str) -> dict[str, dict[str, Any]]:
    response = await client.get(f"/files/{file_id}/content")
    assert response.status_code == 200
    return {entry["custom_id"]: entry for entry in map(json.loads, response.text.splitlines())}


@pytest.mark.anyio
async def test_each_line_becomes_a_job_and_failures_land_in_the_error_file(
    client: httpx2.AsyncClient, clock: FakeClock
) -> None:
    file_id = await upload_jsonl(
        client,
        [
            line("good", prompt="a lighthouse at dusk", seconds="8"),
            line("blocked", prompt="a crowd [fail:moderation_blocked]"),
            line("refused", prompt="a fox", seconds=8),
        ],
    )
    batch = await start(client, file_id)
    assert (batch["object"], batch["status"], batch["endpoint"], batch["metadata"]) == (
        "batch",
        "in_progress",
        "/v1/videos",
        {"k": "v"},
    )
    assert batch["request_counts"] == {"total": 3, "completed": 0, "failed": 1}
    listed = (await client.get("/videos")).json()["data"]
    assert sorted(v["prompt"] for v in listed) == [
        "a crowd [fail:moderation_blocked]",
        "a lighthouse at dusk",
    ]

    clock.advance(RENDER)
    done = (await client.get(f"/batches/{batch['id']}")).json()
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 3, "completed": 1, "failed": 2}
    assert done["completed_at"] is not None

    output = await jsonl(client, done["output_file_id"])
    assert list(output) == ["good"]
    assert output["good"]["response"]["status_code"] == 200
    assert output["good"]["response"]["body"]["status"] == "completed"
    assert output["good"]["error"] is None

    errors = await jsonl(client, done["error_file_id"])
    assert sorted(errors) == ["blocked", "refused"]
    assert errors["blocked"]["error"]["code"] == "moderation_blocked"
    assert errors["refused"]["response"]["status_code"] == 400
    assert errors["refused"]["response"]["body"]["error"]["param"] == "seconds"
    assert errors["refused"]["error"]["code"] == "invalid_type"
    assert (await client.get(f"/files/{done['output_file_id']}")).json()["purpose"] == "batch_output"

    again = (await client.get(f"/batches/{batch['id']}")).json()
    assert (again["output_file_id"], again["error_file_id"]) == (
        done["output_file_id"],
        done["error_file_id"],
    )


@pytest.mark.anyio
async def test_a_structurally_bad_input_file_fails_the_batch_with_line_errors(
    client: httpx2.AsyncClient,
) -> None:
    file_id = await upload_jsonl(
        client,
        [
            line("a", prompt="x"),
            "{not json",
            {**line("a", prompt="y")},
            {**line("b", prompt="z"), "url": "/v1/videos/generations"},
        ],
    )
    batch = await start(client, file_id)
    assert batch["status"] == "failed"
    codes = [(e["line"], e["code"]) for e in batch["errors"]["data"]]
    assert codes == [(2, "invalid_json_line"), (3, "duplicate_custom_id"), (4, "invalid_url")]
    assert (await client.get("/videos")).json()["data"] == []


@pytest.mark.anyio
async def test_cancelling_keeps_finished_results_and_reports_the_rest(
    client: httpx2.AsyncClient, clock: FakeClock
) -> None:
    file_id = await upload_jsonl(
        client, [line("short", prompt="a", seconds="4"), line("long", prompt="b", seconds="20")]
    )
    batch = await start(client, file_id)
    clock.advance(catalog.estimate_render_seconds("sora-2", 4) / 20)
    cancelled = (await client.post(f"/batches/{batch['id']}/cancel")).json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["request_counts"] == {"total": 2, "completed": 1, "failed": 0}
    assert list(await jsonl(client, cancelled["output_file_id"])) == ["short"]
    assert (await jsonl(client, cancelled["error_file_id"]))["long"]["error"]["code"] == "batch_cancelled"
    again = await client.post(f"/batches/{batch['id']}/cancel")
    assert again.status_code == 400


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"endpoint": "/v1/chat/completions"}, "endpoint"),
        ({"completion_window": "1h"}, "completion_window"),
        ({"input_file_id": "file-missing"}, "input_file_id"),
        ({"metadata": {"k": 1}}, "metadata"),
        ({"priority": "high"}, "priority"),
    ],
)
async def test_a_batch_request_is_checked_before_anything_runs(
    client: httpx2.AsyncClient, change: dict[str, Any], param: str
) -> None:
    file_id = await upload_jsonl(client, [line("a", prompt="x")])
    body = {"input_file_id": file_id, "endpoint": "/v1/videos", "completion_window": "24h", **change}
    response = await client.post("/batches", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


@pytest.mark.anyio
async def test_batch_input_needs_a_batch_purpose_file_and_batches_take_json_only(
    client: httpx2.AsyncClient,
) -> None:
    vision = await client.post(
        "/files", data={"purpose": "vision"}, files={"file": ("a.jsonl", b"{}\n", "text/plain")}
    )
    refused = await client.post(
        "/batches",
        json={"input_file_id": vision.json()["id"], "endpoint": "/v1/videos", "completion_window": "24h"},
    )
    assert refused.json()["error"]["param"] == "input_file_id"
    multipart = await client.post(
        "/batches", data={"input_file_id": "x"}, files={"f": ("a", b"", "text/plain")}
    )
    assert multipart.json()["error"]["code"] == "unsupported_content_type"
    bad_purpose = await client.post(
        "/files", data={"purpose": "art"}, files={"file": ("a", b"x", "text/plain")}
    )
    assert bad_purpose.json()["error"]["param"] == "purpose"
