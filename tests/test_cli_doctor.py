"""`sora-mcp doctor`, run as a person runs it: the real console script in a child process. It
reports every variable of the configuration table, reaches a real backend (the emulator on a
socket) with one free GET, and writes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from procs import child_env, free_port, serving
from sora_mcp.config import VARIABLES

SCRIPT = Path(sys.executable).parent / ("sora-mcp.exe" if sys.platform == "win32" else "sora-mcp")
SECRET = "sk-doctor-must-never-print-this"


def doctor(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [str(SCRIPT), "doctor", "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert SECRET not in done.stdout + done.stderr
    return done.returncode, json.loads(done.stdout)


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in report["checks"]}


def test_doctor_checks_a_remote_backend_with_a_free_get_and_writes_nothing(tmp_path: Path) -> None:
    backend_env = child_env(tmp_path / "backend")
    requests_log = tmp_path / "backend" / "home" / "emulator"
    with serving(["emulator"], backend_env) as port:
        env = child_env(
            tmp_path / "user",
            OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1",
            OPENAI_API_KEY=SECRET,
            SORA_MCP_BUDGET_USD="5",
        )
        code, report = doctor(env)
    assert code == 0, report
    checks = by_name(report)
    assert {var.name for var in VARIABLES} <= set(checks)
    assert checks["OPENAI_API_KEY"]["detail"].startswith("set (hidden)")
    assert checks["SORA_MCP_BACKEND"]["detail"] == "remote  [default]"
    assert checks["SORA_MCP_BUDGET_USD"]["detail"] == "5.0  [environment]"
    assert checks["profile"]["detail"].startswith("openai")
    reach = checks[f"http://127.0.0.1:{port}/v1"]
    assert reach["status"] == "ok"
    assert "GET /videos?limit=1" in reach["detail"]
    assert {checks["PyAV"]["status"], checks["Pillow"]["status"]} == {"ok"}
    # Read-only: the user's folders were looked at, not made; the backend holds no job.
    assert checks["home"]["status"] == "ok"
    assert not (tmp_path / "user").exists()
    assert not any((requests_log / "videos").glob("*.json"))


def test_doctor_gives_the_client_snippets_for_this_installation_without_secrets(tmp_path: Path) -> None:
    env = child_env(tmp_path, OPENAI_API_KEY=SECRET, OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1")
    _code, report = doctor(env)
    clients = report["clients"]
    assert set(clients) == {"Claude Desktop", "Claude Code", "Cursor", "VS Code"}
    desktop = json.loads(clients["Claude Desktop"]["text"])["mcpServers"]["sora"]
    assert desktop["command"] == str(SCRIPT.resolve())
    assert desktop["args"] == ["serve"]
    assert desktop["env"]["OPENAI_API_KEY"] == "<your OPENAI_API_KEY>"
    assert desktop["env"]["SORA_MCP_HOME"] == str(tmp_path / "home")
    assert json.loads(clients["Cursor"]["text"]) == {"mcpServers": {"sora": desktop}}
    vscode = json.loads(clients["VS Code"]["text"])["servers"]["sora"]
    assert vscode == {"type": "stdio", **desktop}
    assert clients["Claude Code"]["text"].startswith("claude mcp add sora -e ")
    assert clients["Claude Code"]["text"].endswith(f"-- {SCRIPT.resolve()} serve")


def test_doctor_fails_on_an_unreachable_backend_and_on_a_bad_value(tmp_path: Path) -> None:
    env = child_env(tmp_path, OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1", SORA_MCP_BACKEND="remote")
    code, report = doctor(env)
    assert code == 1
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    assert [c["section"] for c in failed] == ["backend"]

    code, report = doctor({**env, "SORA_MCP_TIMEOUT": "soon"})
    assert code == 1
    checks = by_name(report)
    assert checks["settings"]["status"] == "fail"
    assert "SORA_MCP_TIMEOUT" in checks["settings"]["detail"]
    assert checks["SORA_MCP_TIMEOUT"]["detail"] == "soon  [environment]"
    assert "PyAV" in checks  # what does not depend on the settings is still checked


def test_doctor_on_the_emulator_names_its_state_and_a_former_variable_name(tmp_path: Path) -> None:
    env = child_env(tmp_path, SORA_EMULATOR_FAULTS="500x1")
    code, report = doctor(env)
    assert code == 0
    checks = by_name(report)
    assert checks["backend"]["status"] == "ok"
    assert str(tmp_path / "home" / "emulator") in checks["backend"]["detail"]
    faults = checks["SORA_MCP_EMULATOR_FAULTS"]
    assert (faults["status"], faults["detail"]) == ("warn", "500x1  [former name SORA_EMULATOR_FAULTS]")
