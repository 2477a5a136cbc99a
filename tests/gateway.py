"""A real LiteLLM proxy in front of the standalone emulator, for the gateway tests.

    sora-mcp (test) ──► LiteLLM proxy ──► CountingRelay ──► `sora-mcp emulator`
                        (own venv)        (counts upstream requests, can fail them)

LiteLLM lives in its own virtual environment, made by `.ci/litellm.sh` (pinned release; its
dependency tree must not leak into ours). When that environment is absent the tests that need
it are skipped with the reason — except in CI (`CI` or `SORA_MCP_REQUIRE_LITELLM` set), where
its absence is a failure, so a green CI always means the gateway was really exercised.

Use the session fixture `litellm_gateway` (import it into the test module).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from procs import child_env, free_port
from relay import CountingRelay

LITELLM_VERSION = "1.106.12"
ROOT = Path(__file__).resolve().parent.parent
MASTER_KEY = "sk-litellm-test-master-key-5f0c2a7e91"
UPSTREAM_KEY = "sk-upstream-test-key-7d1e"
MODELS = ("sora-2", "sora-2-pro")
EMULATOR_SPEED = 400.0
READY_TIMEOUT = 120.0


def litellm_venv() -> Path:
    """Where `.ci/litellm.sh` puts the pinned LiteLLM (override with SORA_MCP_LITELLM_VENV)."""
    override = os.environ.get("SORA_MCP_LITELLM_VENV")
    return Path(override) if override else ROOT / ".ci-cache" / f"litellm-{LITELLM_VERSION}"


def litellm_required() -> bool:
    """In CI the gateway tests must run: a missing LiteLLM is a failure, not a skip."""
    return any(
        os.environ.get(var, "").strip().lower() not in ("", "0", "false")
        for var in ("CI", "SORA_MCP_REQUIRE_LITELLM")
    )


def litellm_config(upstream: str) -> str:
    """The proxy's config.yaml: both Sora models and the Files API routed to `upstream`
    (which ends in /v1). This is the config the README gives users, with test keys."""
    models = "\n".join(
        f"""  - model_name: {name}
    litellm_params:
      model: openai/{name}
      api_base: {upstream}
      api_key: {UPSTREAM_KEY}
    model_info:
      mode: video_generation"""
        for name in MODELS
    )
    return f"""model_list:
{models}
files_settings:
  - custom_llm_provider: openai
    api_base: {upstream}
    api_key: {UPSTREAM_KEY}
"""


@dataclass
class Gateway:
    """A running proxy: where to send requests, with which key, and the relay behind it."""

    base_url: str
    api_key: str
    relay: CountingRelay
    emulator_url: str
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"{url} exited with {proc.returncode} before it was ready:\n{tail}")
        try:
            if httpx2.get(url, timeout=1.0).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        time.sleep(0.25)  # a real process starting; not a timing assertion
    raise TimeoutError(f"{url} not ready after {timeout:g} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="session")
def litellm_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """The emulator, the counting relay and a LiteLLM proxy, started once per session."""
    venv = litellm_venv()
    binary = venv / "bin" / "litellm"
    if not binary.exists():
        reason = f"LiteLLM {LITELLM_VERSION} is not installed in {venv}; run `bash .ci/litellm.sh` first"
        if litellm_required():
            pytest.fail(reason + " (CI must exercise the real gateway)")
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("gateway")
    env = child_env(work, speed=EMULATOR_SPEED)
    emulator_port = free_port()
    emulator_log = work / "emulator.log"
    with emulator_log.open("wb") as sink:
        emulator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sora_mcp",
                "emulator",
                "--port",
                str(emulator_port),
                "--root",
                str(work / "emu"),
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    relay: CountingRelay | None = None
    proxy: subprocess.Popen[bytes] | None = None
    try:
        emulator_url = f"http://127.0.0.1:{emulator_port}"
        _wait_ready(f"{emulator_url}/v1/videos", emulator, emulator_log, 30.0)
        relay = CountingRelay(emulator_url).start()
        config = work / "litellm.yaml"
        config.write_text(litellm_config(f"{relay.url}/v1"))
        port = free_port()
        log = work / "litellm.log"
        proxy_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SORA_", "LITELLM_"))
        }
        proxy_env.update(
            LITELLM_MASTER_KEY=MASTER_KEY,
            # Offline: the model price map ships with the package; no telemetry.
            LITELLM_LOCAL_MODEL_COST_MAP="True",
            LITELLM_TELEMETRY="False",
            NO_DOCS="True",
        )
        proxy_env.pop("DATABASE_URL", None)
        with log.open("wb") as sink:
            proxy = subprocess.Popen(
                [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
                env=proxy_env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=work,
            )
        _wait_ready(f"http://127.0.0.1:{port}/health/liveliness", proxy, log, READY_TIMEOUT)
        yield Gateway(
            base_url=f"http://127.0.0.1:{port}/v1",
            api_key=MASTER_KEY,
            relay=relay,
            emulator_url=emulator_url,
            log=log,
        )
    finally:
        if proxy is not None:
            _stop(proxy)
        if relay is not None:
            relay.stop()
        _stop(emulator)
        shutil.rmtree(work / "emu", ignore_errors=True)
