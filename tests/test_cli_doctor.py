"""`sora-mcp doctor`, run as a person runs it: the real console script in a child process. It
reports every variable of the configuration table, reaches a real backend (the emulator on a
socket) with one free GET, and writes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from procs import child_env, free_port, serving
from sora_mcp.config import VARIABLES
from sora_mcp.registry.postgres import PostgresRegistry
from sora_mcp.registry.postgres_schema import SCHEMA_VERSION as PG_SCHEMA_VERSION

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


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    user = parts.username or "postgres"
    host = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=f"{user}:{password}@{host}").geturl()


def _has_tables(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass('sora_meta') IS NOT NULL").fetchone()
    return bool(row and row[0])


def test_doctor_reports_a_shared_postgresql_registry_and_what_its_first_start_does(
    tmp_path: Path, postgres_url: str
) -> None:
    url = _with_password(postgres_url, SECRET)  # trusted server: the password is only shown, never used
    env = child_env(tmp_path, SORA_MCP_REGISTRY_URL=url)
    name = _with_password(postgres_url, "***")

    code, empty = doctor(env)
    created = _has_tables(postgres_url)
    PostgresRegistry.open(postgres_url).close()
    _code, current = doctor(env)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE sora_meta SET value = '99' WHERE key = 'schema_version'")
    newer_code, newer = doctor(env)

    assert code == 0 and by_name(empty)[name]["status"] == "ok"
    assert "empty database" in by_name(empty)[name]["detail"]
    assert not created  # read-only: the doctor made no table
    assert "registry" not in by_name(empty)  # no registry folder is used
    assert by_name(current)[name]["detail"] == f"schema v{PG_SCHEMA_VERSION}, current"
    assert newer_code == 1 and by_name(newer)[name]["status"] == "fail"
    assert "99" in by_name(newer)[name]["detail"]


def test_doctor_fails_on_an_unreachable_postgresql_registry(tmp_path: Path) -> None:
    url = f"postgresql://sora:{SECRET}@127.0.0.1:{free_port()}/sora"
    code, report = doctor(child_env(tmp_path, SORA_MCP_REGISTRY_URL=url))
    check = by_name(report)[f"postgresql://sora:***@127.0.0.1:{urlsplit(url).port}/sora"]
    assert code == 1
    assert (check["section"], check["status"]) == ("registry", "fail")
    assert check["detail"].startswith("cannot reach it")
