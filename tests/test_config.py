"""Settings: environment in, validated settings out, with the fix in every error."""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sora_mcp.api.profile import PROFILES
from sora_mcp.cli import main
from sora_mcp.config import ENV_NAMES, PROFILE_NAMES, VARIABLES, Settings, markdown_table
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


def _readme_configuration_table() -> str:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("|"))


def test_the_readme_configuration_table_is_the_table_settings_reads() -> None:
    expected = markdown_table()
    assert _readme_configuration_table() == expected, (
        "README.md's Configuration table differs from config.VARIABLES; replace it with:\n" + expected
    )


def test_every_settings_field_is_filled_by_exactly_one_variable() -> None:
    fields = [var.field for var in VARIABLES]
    assert sorted(fields) == sorted(f.name for f in dataclasses.fields(Settings))
    assert len({var.name for var in VARIABLES}) == len(VARIABLES)


def test_defaults_come_from_the_table_when_nothing_is_set(tmp_path: Path) -> None:
    settings = Settings.from_env({"SORA_MCP_HOME": str(tmp_path), "SORA_MCP_OUTPUT_DIR": str(tmp_path)})
    assert settings.request_timeout == 60.0
    assert settings.emulator_speed == 20.0
    assert settings.base_url == "https://api.openai.com/v1"
    assert (settings.budget_daily_usd, settings.budget_per_call_usd, settings.emulator_faults) == (None,) * 3
    assert (settings.input_roots, settings.allowed_hosts, settings.allowed_origins) == ((), (), ())


def test_the_profile_defaults_to_the_backend_and_a_known_name_is_accepted() -> None:
    assert Settings.from_env({}).profile == "emulator"
    assert Settings.from_env({"OPENAI_API_KEY": "sk-x"}).profile == "openai"
    assert Settings.from_env({"SORA_MCP_PROFILE": "OpenAI"}).profile == "openai"


def test_an_unknown_profile_fails_at_start_naming_the_variable_and_the_choices() -> None:
    with pytest.raises(ConfigError, match="SORA_MCP_PROFILE") as caught:
        Settings.from_env({"SORA_MCP_PROFILE": "azur"})
    assert all(name in str(caught.value) for name in PROFILE_NAMES)


def test_the_base_layer_profile_names_are_the_wire_client_profiles() -> None:
    assert set(PROFILE_NAMES) == set(PROFILES)
    assert all(PROFILES[name].name == name for name in PROFILE_NAMES)


def test_the_former_faults_variable_still_works_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sora_mcp.config"):
        settings = Settings.from_env({"SORA_EMULATOR_FAULTS": "500x2"})
    assert settings.emulator_faults == "500x2"
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "SORA_MCP_EMULATOR_FAULTS" in caplog.records[0].getMessage()
    caplog.clear()
    both = {"SORA_EMULATOR_FAULTS": "500x2", "SORA_MCP_EMULATOR_FAULTS": "503"}
    assert Settings.from_env(both).emulator_faults == "503"
    assert caplog.records == []


def test_the_command_line_warns_about_the_former_name_on_stderr(tmp_path: Path) -> None:
    env = {**os.environ, "SORA_EMULATOR_FAULTS": "500x2:bad-option"}
    done = subprocess.run(
        [sys.executable, "-m", "sora_mcp", "emulator", "--port", "0"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    # The former name is read (so its bad value is reported, under the new name), with a warning.
    assert done.returncode == 2
    assert done.stdout == ""
    assert "SORA_EMULATOR_FAULTS is a former name" in done.stderr
    assert "SORA_MCP_EMULATOR_FAULTS: cannot read" in done.stderr


def test_overrides_by_field_name_win_and_are_checked_like_the_variable() -> None:
    settings = Settings.from_env({"SORA_MCP_TIMEOUT": "5"}, request_timeout=9, budget_daily_usd=1.5)
    assert (settings.request_timeout, settings.budget_daily_usd) == (9.0, 1.5)
    with pytest.raises(ConfigError, match="SORA_MCP_TIMEOUT"):
        Settings.from_env({}, request_timeout=-1)
    with pytest.raises(TypeError, match="timeout"):
        Settings.from_env({}, timeout=5)


def test_the_test_isolation_clears_every_variable_the_table_names() -> None:
    assert set(ENV_NAMES) >= {var.name for var in VARIABLES} | {"SORA_EMULATOR_FAULTS"}
    assert [name for name in ENV_NAMES if name in os.environ] == ["SORA_MCP_HOME", "SORA_MCP_OUTPUT_DIR"]


def test_request_state_keys_are_secrets_of_32_bytes_or_more_and_a_short_one_is_refused() -> None:
    long_a, long_b = "a" * 32, "b" * 64
    keys = Settings.from_env({"SORA_MCP_REQUEST_STATE_KEYS": f"{long_a}, {long_b}"}).request_state_keys
    assert keys == (long_a, long_b)
    assert Settings.from_env({}).request_state_keys == ()  # the SDK's own key for this process
    with pytest.raises(ConfigError, match=r"SORA_MCP_REQUEST_STATE_KEYS.*key 2"):
        Settings.from_env({"SORA_MCP_REQUEST_STATE_KEYS": f"{long_a},short"})
    assert "request_state_keys" not in repr(Settings.from_env({"SORA_MCP_REQUEST_STATE_KEYS": long_a}))
