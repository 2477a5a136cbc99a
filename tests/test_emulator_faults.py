"""Deterministic faults: injected HTTP statuses with Retry-After, the env syntax, prompt markers."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest

from sora_mcp.clock import FakeClock
from sora_mcp.emulator.app import create_app
from sora_mcp.emulator.faults import FaultConfig, HttpFault, prompt_failure
from sora_mcp.errors import ConfigError


def client_for(tmp_path: Path, faults: FaultConfig) -> httpx2.AsyncClient:
    app = create_app(root=tmp_path / "emulator", clock=FakeClock(), faults=faults)
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://emulator/v1")


@pytest.mark.anyio
async def test_injected_faults_answer_in_order_with_retry_after_then_stop(tmp_path: Path) -> None:
    faults = FaultConfig()
    faults.inject(500, times=2)
    faults.inject(429, times=1, retry_after=2.5)
    async with client_for(tmp_path, faults) as client:
        answers = [await client.get("/videos") for _ in range(4)]
    assert [a.status_code for a in answers] == [500, 500, 429, 200]
    assert answers[0].json()["error"]["type"] == "server_error"
    assert "retry-after" not in answers[0].headers
    limited = answers[2]
    assert limited.json()["error"] == {
        "message": limited.json()["error"]["message"],
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    assert (limited.headers["retry-after"], limited.headers["retry-after-ms"]) == ("3", "2500")
    assert all(a.headers["x-request-id"].startswith("req_") for a in answers)
    assert faults.pending == []


@pytest.mark.anyio
async def test_a_fault_can_target_methods_and_paths_and_changes_no_state(tmp_path: Path) -> None:
    faults = FaultConfig()
    faults.inject(503, times=1, methods={"post"}, path="/videos")
    async with client_for(tmp_path, faults) as client:
        assert (await client.get("/videos")).status_code == 200
        refused = await client.post("/videos", json={"prompt": "a fox"})
        assert refused.status_code == 503
        assert (await client.get("/videos")).json()["data"] == []
        assert (await client.post("/videos", json={"prompt": "a fox"})).status_code == 200


@pytest.mark.anyio
async def test_faults_can_be_injected_while_the_app_runs(tmp_path: Path) -> None:
    app = create_app(root=tmp_path / "emulator", clock=FakeClock())
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://e/v1") as client:
        assert (await client.get("/videos")).status_code == 200
        app.state.faults.inject(502)
        assert (await client.get("/videos")).status_code == 502


def test_the_environment_syntax_reads_statuses_counts_and_options() -> None:
    config = FaultConfig.parse("500x2, 429x1:retry=2,503:methods=GET|post:path=/content")
    assert config.pending == [
        HttpFault(status=500, times=2),
        HttpFault(status=429, times=1, retry_after=2.0),
        HttpFault(status=503, times=1, methods=frozenset({"GET", "POST"}), path="/content"),
    ]
    assert FaultConfig.parse("").pending == []


@pytest.mark.parametrize("text", ["5xx", "200", "500x0", "500:retry=soon", "500:color=red", "429:retry=-1"])
def test_the_environment_syntax_refuses_garbage_naming_the_variable(text: str) -> None:
    with pytest.raises(ConfigError, match="SORA_MCP_EMULATOR_FAULTS"):
        FaultConfig.parse(text)


def test_inject_refuses_non_error_statuses_and_zero_times() -> None:
    with pytest.raises(ValueError, match="400-599"):
        FaultConfig().inject(200)
    with pytest.raises(ValueError, match="at least 1"):
        FaultConfig().inject(500, times=0)


def test_a_fail_marker_names_the_code_and_the_first_marker_wins() -> None:
    assert prompt_failure("a calm lake") is None
    code, message = prompt_failure("x [fail:sentinel_block] y [fail:other]") or ("", "")
    assert code == "sentinel_block"
    assert message
    assert prompt_failure("[fail:anything_else]") == (
        "anything_else",
        "The video could not be generated (simulated failure 'anything_else').",
    )
