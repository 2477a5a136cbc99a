"""Settings: argument > environment > default, validated once at start.

A wrong value fails here, before the server answers anything, with a message that names the
variable and the fix — desktop clients show little more than the first line of stderr.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import platformdirs

from sora_mcp.errors import ConfigError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
BACKENDS = ("auto", "emulator", "remote")
Backend = Literal["emulator", "remote"]


@dataclass(frozen=True)
class Settings:
    """Everything sora-mcp reads from its environment, resolved and checked."""

    backend: Backend
    base_url: str
    home: Path
    output_dir: Path
    api_key: str | None = field(default=None, repr=False)
    profile: str = "openai"
    request_timeout: float = 60.0
    emulator_speed: float = 20.0
    emulator_faults: str | None = None
    # Where model-supplied paths (image references) may be read from, besides output_dir.
    input_roots: tuple[Path, ...] = ()
    # Spending limits in USD (catalogue prices): per UTC day and per tool call; None = no limit.
    budget_daily_usd: float | None = None
    budget_per_call_usd: float | None = None
    # Streamable HTTP: a bearer token clients must send, and Host/Origin values to accept.
    http_token: str | None = field(default=None, repr=False)
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()

    @property
    def is_emulator(self) -> bool:
        return self.backend == "emulator"

    @property
    def backend_label(self) -> str:
        """A short name for the registry: 'emulator' or the remote host."""
        if self.is_emulator:
            return "emulator"
        return urlsplit(self.base_url).netloc or self.base_url

    @property
    def registry_dir(self) -> Path:
        return self.home / "registry"

    @property
    def emulator_dir(self) -> Path:
        return self.home / "emulator"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from `env` (default: os.environ); keyword overrides win.

        Raises:
            ConfigError: a value is invalid; the message says which and how to fix it.
        """
        env = os.environ if env is None else env

        def pick(name: str, var: str) -> str | None:
            if name in overrides and overrides[name] is not None:
                return str(overrides[name])
            value = env.get(var, "").strip()
            return value or None

        api_key = pick("api_key", "OPENAI_API_KEY")
        base_url_raw = pick("base_url", "OPENAI_BASE_URL")
        base_url = _check_base_url(base_url_raw or DEFAULT_BASE_URL)
        choice = (pick("backend", "SORA_MCP_BACKEND") or "auto").lower()
        if choice not in BACKENDS:
            raise ConfigError(
                f"SORA_MCP_BACKEND must be one of {', '.join(BACKENDS)}; got {choice!r}. "
                "Use 'emulator' to work offline, 'remote' to use OPENAI_BASE_URL, or unset it."
            )
        backend: Backend
        if choice == "auto":
            backend = "remote" if api_key else "emulator"
        else:
            backend = "remote" if choice == "remote" else "emulator"
        if backend == "remote" and not api_key and base_url_raw is None:
            raise ConfigError(
                "SORA_MCP_BACKEND=remote needs OPENAI_API_KEY, or OPENAI_BASE_URL for a server that "
                "takes no key (e.g. a local vLLM-Omni). Set one, or use SORA_MCP_BACKEND=emulator."
            )

        home = _absolute_dir(
            pick("home", "SORA_MCP_HOME"), "SORA_MCP_HOME", platformdirs.user_data_path("sora-mcp")
        )
        output_dir = _absolute_dir(
            pick("output_dir", "SORA_MCP_OUTPUT_DIR"),
            "SORA_MCP_OUTPUT_DIR",
            platformdirs.user_videos_path() / "sora-mcp",
        )
        roots_raw = pick("input_roots", "SORA_MCP_INPUT_DIRS")
        input_roots = tuple(
            _absolute_dir(part, "SORA_MCP_INPUT_DIRS", Path.home())
            for part in (roots_raw.split(os.pathsep) if roots_raw else [])
            if part
        )
        return cls(
            backend=backend,
            base_url=base_url,
            api_key=api_key,
            home=home,
            output_dir=output_dir,
            profile=pick("profile", "SORA_MCP_PROFILE")
            or ("emulator" if backend == "emulator" else "openai"),
            request_timeout=_positive(pick("request_timeout", "SORA_MCP_TIMEOUT"), "SORA_MCP_TIMEOUT", 60.0),
            emulator_speed=_positive(
                pick("emulator_speed", "SORA_MCP_EMULATOR_SPEED"), "SORA_MCP_EMULATOR_SPEED", 20.0
            ),
            emulator_faults=pick("emulator_faults", "SORA_EMULATOR_FAULTS"),
            input_roots=input_roots,
            budget_daily_usd=_optional_amount(
                pick("budget_daily_usd", "SORA_MCP_BUDGET_USD"), "SORA_MCP_BUDGET_USD"
            ),
            budget_per_call_usd=_optional_amount(
                pick("budget_per_call_usd", "SORA_MCP_BUDGET_PER_CALL_USD"), "SORA_MCP_BUDGET_PER_CALL_USD"
            ),
            http_token=pick("http_token", "SORA_MCP_HTTP_TOKEN"),
            allowed_hosts=_csv(pick("allowed_hosts", "SORA_MCP_ALLOWED_HOSTS")),
            allowed_origins=_csv(pick("allowed_origins", "SORA_MCP_ALLOWED_ORIGINS")),
        )


def _optional_amount(raw: str | None, var: str) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{var} must be an amount in USD such as 25 or 2.50; got {raw!r}.")
    return value


def _csv(raw: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (raw or "").split(",") if part.strip())


def _check_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"OPENAI_BASE_URL must be an http(s) URL such as {DEFAULT_BASE_URL} or "
            f"http://localhost:4000/v1; got {url!r}."
        )
    return url.rstrip("/")


def _absolute_dir(raw: str | None, var: str, default: Path) -> Path:
    if raw is None:
        return default.resolve()
    path = Path(raw).expanduser()
    if not path.is_absolute():
        # Desktop clients start servers in unpredictable working folders, so a relative path
        # would scatter files; refuse it rather than guess.
        raise ConfigError(
            f"{var} must be an absolute path (desktop clients start servers anywhere); got {raw!r}."
        )
    return path.resolve()


def _positive(raw: str | None, var: str, default: float) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{var} must be a positive number; got {raw!r}.")
    return value
