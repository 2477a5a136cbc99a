"""Settings: environment in, validated settings out, with the fix in every error."""

from __future__ import annotations

from pathlib import Path

import pytest

from sora_mcp.cli import main
from sora_mcp.config import Settings
from sora_mcp.errors import ConfigError


def test_no_key_means_the_emulator(tmp_path: Path) -> None:
    settings = Settings.from_env({"SORA_MCP_HOME": str(tmp_path)})
    assert settings.is_emulator
    assert settings.backend_label == "emulator"
    assert settings.registry_dir == tmp_path / "registry"
    assert settings.output_dir.is_absolute()


def test_a_key_means_the_configured_remote_backend() -> None:
    settings = Settings.from_env({"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "http://localhost:4000/v1/"})
    assert settings.backend == "remote"
    assert settings.base_url == "http://localhost:4000/v1"
    assert settings.backend_label == "localhost:4000"
    assert "sk-x" not in repr(settings)


def test_emulator_can_be_forced_even_with_a_key() -> None:
    assert Settings.from_env({"OPENAI_API_KEY": "sk-x", "SORA_MCP_BACKEND": "emulator"}).is_emulator


def test_remote_without_key_or_url_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        Settings.from_env({"SORA_MCP_BACKEND": "remote"})
    assert Settings.from_env({"SORA_MCP_BACKEND": "remote", "OPENAI_BASE_URL": "http://127.0.0.1:8091/v1"})


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"SORA_MCP_BACKEND": "cloud"}, "SORA_MCP_BACKEND"),
        ({"SORA_MCP_OUTPUT_DIR": "videos"}, "SORA_MCP_OUTPUT_DIR"),
        ({"SORA_MCP_HOME": "./state"}, "SORA_MCP_HOME"),
        ({"OPENAI_BASE_URL": "api.example.com"}, "OPENAI_BASE_URL"),
        ({"SORA_MCP_TIMEOUT": "-1"}, "SORA_MCP_TIMEOUT"),
        ({"SORA_MCP_EMULATOR_SPEED": "fast"}, "SORA_MCP_EMULATOR_SPEED"),
    ],
)
def test_wrong_values_fail_at_start_naming_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)


def test_cli_reports_a_configuration_error_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SORA_MCP_BACKEND", "cloud")
    assert main(["serve"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "SORA_MCP_BACKEND" in captured.err
