"""Settings: argument > environment > default, validated once at start.

A wrong value fails here, before the server answers anything, with a message that names the
variable and the fix — desktop clients show little more than the first line of stderr.

Every variable is one row of `VARIABLES`: its name, the `Settings` field it fills, its default,
what it accepts and what it means. That one table drives `Settings.from_env`, the README's
configuration table (`markdown_table`; a test compares the two), `sora-mcp doctor`, and the test
isolation (tests/conftest.py clears every variable in it). A new variable is a new row and a field.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import platformdirs

from sora_mcp.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# The longest a tool call waits for jobs: many clients end a call at 60 s whatever progress is
# sent, so a wait must end (and say "call again") before that.
DEFAULT_MAX_WAIT_SECONDS = 50
MAX_WAIT_LIMIT_SECONDS = 55
# The MCP SDK's AES-GCM request-state keys are derived from secrets at least this long.
MIN_STATE_KEY_BYTES = 32
BACKENDS = ("auto", "emulator", "remote")
Backend = Literal["emulator", "remote"]
PROFILE_NAMES: tuple[str, ...] = (
    "openai",
    "emulator",
    "azure",
    "litellm",
    "bifrost",
    "vllm-omni",
    "sglang",
    "aquiles",
    "openrouter",
)
"""The backend profiles SORA_MCP_PROFILE may name. Each has a `BackendProfile` of that name in
`api/profile.py`, which checks at import that the two agree: add the name here and the profile
there. The names live in the base so that Settings can validate them without importing api/."""


@dataclass(frozen=True)
class Parser:
    """How one kind of value is read: `read(raw, variable)` gets the stripped, non-empty text and
    returns the value or raises ConfigError naming the variable; `accepts` says it for people."""

    accepts: str
    read: Callable[[str, str], Any]


@dataclass(frozen=True)
class EnvVar:
    """One environment variable: the single place its name, default and meaning are written."""

    name: str
    field: str
    parser: Parser
    meaning: str
    default: Any = None
    # For defaults that depend on the machine (per-user folders): computed when needed.
    default_factory: Callable[[], Any] | None = None
    # How the README shows the default when the value itself does not say it well.
    shown_default: str | None = None
    secret: bool = False
    # Former names, still read (with a warning) when the current one is unset.
    old_names: tuple[str, ...] = ()

    def value(self, raw: str | None) -> Any:
        """The parsed value of `raw`, or the default when it is None (unset)."""
        if raw is not None:
            return self.parser.read(raw, self.name)
        return self.default_factory() if self.default_factory else self.default

    @property
    def default_text(self) -> str:
        if self.shown_default is not None:
            return self.shown_default
        if self.default is None or self.default == ():
            return "—"
        return f"`{self.default:g}`" if isinstance(self.default, float) else f"`{self.default}`"


# ---- parsers ---------------------------------------------------------------------------------


def _text(raw: str, _var: str) -> str:
    return raw


def _choice(choices: tuple[str, ...], hint: str = "") -> Parser:
    def read(raw: str, var: str) -> str:
        value = raw.lower()
        if value not in choices:
            raise ConfigError(f"{var} must be one of {', '.join(choices)}; got {raw!r}.{hint}")
        return value

    return Parser("one of " + ", ".join(f"`{c}`" for c in choices), read)


def _positive(raw: str, var: str) -> float:
    value = _number(raw)
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{var} must be a positive number; got {raw!r}.")
    return value


def _count(raw: str, var: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{var} must be a whole number ≥ 1; got {raw!r}.")
    return value


def _amount(raw: str, var: str) -> float:
    value = _number(raw)
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{var} must be an amount in USD such as 25 or 2.50; got {raw!r}.")
    return value


def _number(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        return math.nan


def _url(raw: str, var: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"{var} must be an http(s) URL such as {DEFAULT_BASE_URL} or "
            f"http://localhost:4000/v1; got {raw!r}."
        )
    return raw.rstrip("/")


def _absolute_dir(raw: str, var: str) -> Path:
    path = Path(raw).expanduser()
    if not path.is_absolute():
        # Desktop clients start servers in unpredictable working folders, so a relative path
        # would scatter files; refuse it rather than guess.
        raise ConfigError(
            f"{var} must be an absolute path (desktop clients start servers anywhere); got {raw!r}."
        )
    return path.resolve()


def _max_wait(raw: str, var: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_WAIT_LIMIT_SECONDS:
        raise ConfigError(
            f"{var} must be a whole number of seconds from 1 to {MAX_WAIT_LIMIT_SECONDS} (clients "
            f"commonly end a call at 60 s); got {raw!r}. Unset it for {DEFAULT_MAX_WAIT_SECONDS}."
        )
    return int(raw)


def _dirs(raw: str, var: str) -> tuple[Path, ...]:
    return tuple(_absolute_dir(part, var) for part in raw.split(os.pathsep) if part.strip())


def _csv(raw: str, _var: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _registry_url(raw: str, var: str) -> str:
    if urlsplit(raw).scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            f"{var} must be a PostgreSQL URL such as postgresql://sora@db.example/sora (or unset, "
            f"for the registry in SORA_MCP_HOME); got a {urlsplit(raw).scheme or 'schemeless'} URL."
        )
    return raw


def _state_keys(raw: str, var: str) -> tuple[str, ...]:
    keys = _csv(raw, var)
    short = [n for n, key in enumerate(keys, 1) if len(key.encode()) < MIN_STATE_KEY_BYTES]
    if not keys or short:
        raise ConfigError(
            f"{var} must be secrets of at least {MIN_STATE_KEY_BYTES} bytes, comma-separated (key "
            f"{short[0] if short else 1} is not); make one with: "
            'python -c "import secrets; print(secrets.token_hex(32))"'
        )
    return keys


TEXT = Parser("text", _text)
POSITIVE = Parser("a number > 0", _positive)
COUNT = Parser("a whole number ≥ 1", _count)
AMOUNT = Parser("an amount in USD ≥ 0", _amount)
URL = Parser("an http(s) URL", _url)
FOLDER = Parser("an absolute path", _absolute_dir)
FOLDERS = Parser("absolute paths separated by `:` (`;` on Windows)", _dirs)
CSV = Parser("comma-separated values", _csv)
WAIT = Parser(f"whole seconds, 1–{MAX_WAIT_LIMIT_SECONDS}", _max_wait)


def redacted_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


POSTGRES_URL = Parser("a `postgresql://` URL", _registry_url)
STATE_KEYS = Parser("secrets of ≥ 32 bytes, comma-separated", _state_keys)


def _threshold(raw: str, var: str) -> float | None:
    if raw.lower() == "off":
        return None
    try:
        return _amount(raw, var)
    except ConfigError:
        raise ConfigError(
            f"{var} must be an amount in USD such as 1 or 2.50 (0 asks before every billable call), "
            f"or off; got {raw!r}."
        ) from None


THRESHOLD = Parser("an amount in USD ≥ 0, or `off`", _threshold)
# Remote backends bill real money: by default ask before anything over a dollar (a 4 s sora-2
# clip is $0.40, a 4 s sora-2-pro clip $1.20). The emulator bills nothing, so it never asks.
DEFAULT_CONFIRM_ABOVE_USD = 1.0

# ---- the table -------------------------------------------------------------------------------

VARIABLES: tuple[EnvVar, ...] = (
    EnvVar("OPENAI_API_KEY", "api_key", TEXT, secret=True,
           meaning="key for the remote backend (same meaning as in OpenAI's SDKs); never logged or stored"),
    EnvVar("OPENAI_BASE_URL", "base_url", URL, shown_default=f"`{DEFAULT_BASE_URL}`",
           meaning="any server that speaks the Videos API format, e.g. `http://localhost:4000/v1` (LiteLLM)"),
    EnvVar("SORA_MCP_BACKEND", "backend", _choice(BACKENDS, " Use 'emulator' to work offline, 'remote' "
           "to use OPENAI_BASE_URL, or unset it."), default="auto",
           meaning="`auto` = the emulator when no key is set, otherwise the base URL; `emulator`; `remote`"),
    EnvVar("SORA_MCP_PROFILE", "profile", _choice(PROFILE_NAMES),
           shown_default="`openai` (`emulator` with the emulator)",
           meaning="backend profile: auth header style, path prefix, status aliases, `seconds` encoding"),
    EnvVar("SORA_MCP_HOME", "home", FOLDER,
           default_factory=lambda: platformdirs.user_data_path("sora-mcp").resolve(),
           shown_default="per-user data folder (`~/.local/share/sora-mcp`)",
           meaning="registry and emulator state"),
    EnvVar("SORA_MCP_OUTPUT_DIR", "output_dir", FOLDER,
           default_factory=lambda: (platformdirs.user_videos_path() / "sora-mcp").resolve(),
           shown_default="per-user videos folder + `/sora-mcp`",
           meaning="where files are downloaded (absolute: desktop clients start servers in unpredictable folders)"),
    EnvVar("SORA_MCP_INPUT_DIRS", "input_roots", FOLDERS, default=(),
           meaning="extra folders from which local image files may be read; the output folder always may, and "
           "so may the folders an MCP client declares as its roots. A refusal names the value that would allow the file"),
    EnvVar("SORA_MCP_TIMEOUT", "request_timeout", POSITIVE, default=60.0,
           meaning="per-request HTTP timeout, seconds"),
    EnvVar("SORA_MCP_MAX_WAIT_SECONDS", "max_wait_seconds", WAIT, default=DEFAULT_MAX_WAIT_SECONDS,
           meaning="the longest one tool call waits for jobs (many clients end a call at 60 s); a longer "
           "`wait_seconds` is shortened and the answer says to call again"),
    EnvVar("SORA_MCP_DOWNLOAD_TIMEOUT", "download_timeout", POSITIVE, default=300.0,
           meaning="longest silence while a file downloads, seconds: a backend may render the file before "
           "its first byte, which is not a dead connection"),
    EnvVar("SORA_MCP_BATCH_CONCURRENCY", "batch_concurrency", COUNT, default=3,
           meaning="direct-mode batch items being sent at once (`serve --batch-concurrency` too); a 429 "
           "pauses sending, never downloading"),
    EnvVar("SORA_MCP_EMULATOR_SPEED", "emulator_speed", POSITIVE, default=20.0,
           meaning="how many times faster than the real service the emulator renders"),
    EnvVar("SORA_MCP_EMULATOR_FAULTS", "emulator_faults", TEXT, old_names=("SORA_EMULATOR_FAULTS",),
           meaning="emulator fault injection, e.g. `500x2,429x1:retry=2` (see `src/sora_mcp/emulator/faults.py`); "
           "a prompt containing `[fail:CODE]` makes that job fail with `CODE`. Formerly `SORA_EMULATOR_FAULTS`"),
    EnvVar("SORA_MCP_BUDGET_USD", "budget_daily_usd", AMOUNT,
           meaning="spending limit per UTC day (catalogue prices); a call that would exceed it is refused "
           "before anything is sent, with the figures"),
    EnvVar("SORA_MCP_BUDGET_PER_CALL_USD", "budget_per_call_usd", AMOUNT,
           meaning="spending limit for one tool call (all variations or batch items together)"),
    EnvVar("SORA_MCP_CONFIRM_ABOVE_USD", "confirm_above_usd", THRESHOLD, default="auto",
           shown_default=f"`{DEFAULT_CONFIRM_ABOVE_USD:g}` on remote backends, `off` on the emulator",
           meaning="a billable call estimated above this asks the user first (MCP elicitation, or a quote "
           "and a single-use `confirm_token`); nothing is sent until they agree. `0` asks before every "
           "billable call"),
    EnvVar("SORA_MCP_HTTP_TOKEN", "http_token", TEXT, secret=True,
           meaning="bearer token HTTP clients must send (`Authorization: Bearer …`); required for a non-loopback bind"),
    EnvVar("SORA_MCP_ALLOWED_HOSTS", "allowed_hosts", CSV, default=(), shown_default="loopback names",
           meaning="`Host` values the HTTP transport accepts (DNS-rebinding protection); "
           "required for a non-loopback bind"),
    EnvVar("SORA_MCP_ALLOWED_ORIGINS", "allowed_origins", CSV, default=(), shown_default="loopback names",
           meaning="`Origin` values the HTTP transport accepts (DNS-rebinding protection)"),
    EnvVar("SORA_MCP_REGISTRY_URL", "registry_url", POSTGRES_URL, secret=True,
           shown_default="— (the registry in `SORA_MCP_HOME`)",
           meaning="a shared PostgreSQL registry (needs `sora-mcp[postgres]`) for a team's replicas; "
           "see \"Running for a team\""),
    EnvVar("SORA_MCP_REQUEST_STATE_KEYS", "request_state_keys", STATE_KEYS, default=(), secret=True,
           shown_default="a key made at start, known to this process only",
           meaning="the keys that seal the MCP `requestState` of a call that asks the user midway "
           "(2026-07-28 protocol); the first seals, all open, so rotate by putting the new one after, "
           "then first. Replicas behind one load balancer need the same keys"),
    EnvVar("SORA_MCP_BATCH_LEASE_SECONDS", "batch_lease_seconds", POSITIVE, default=30.0,
           meaning="how long a server's claim holds without its heartbeat — on a direct-batch item (after "
           "that, another server settles it: reconciled, never resent) or on following a job left "
           "running (another server takes it over); each server also sweeps the registry this often for "
           "such work nobody holds"),
)  # fmt: skip
"""Every variable sora-mcp reads, in the order the README lists them."""

ENV_NAMES: tuple[str, ...] = tuple(name for var in VARIABLES for name in (var.name, *var.old_names))
"""Every name read from the environment, former names included (what test isolation clears)."""

_BY_FIELD = {var.field: var for var in VARIABLES}


def markdown_table() -> str:
    """The README's configuration table, generated from `VARIABLES`."""
    rows = ["| variable | default | accepts | meaning |", "|---|---|---|---|"]
    rows += [f"| `{v.name}` | {v.default_text} | {v.parser.accepts} | {v.meaning} |" for v in VARIABLES]
    return "\n".join(rows)


@dataclass(frozen=True)
class Settings:
    """Everything sora-mcp reads from its environment, resolved and checked. The defaults are in
    `VARIABLES`; build it with `from_env`."""

    backend: Backend
    base_url: str
    home: Path
    output_dir: Path
    api_key: str | None = field(repr=False)
    profile: str
    request_timeout: float
    # The longest one tool call waits for jobs; longer waits are shortened (call again).
    max_wait_seconds: int
    download_timeout: float
    batch_concurrency: int
    emulator_speed: float
    emulator_faults: str | None
    # Where model-supplied paths (image references) may be read from, besides output_dir.
    input_roots: tuple[Path, ...]
    # Spending limits in USD (catalogue prices): per UTC day and per tool call; None = no limit.
    budget_daily_usd: float | None
    budget_per_call_usd: float | None
    # Ask the user before a billable call estimated above this (USD); None = never ask.
    confirm_above_usd: float | None
    # Streamable HTTP: a bearer token clients must send, and Host/Origin values to accept.
    http_token: str | None = field(repr=False)
    allowed_hosts: tuple[str, ...]
    allowed_origins: tuple[str, ...]
    # A shared registry database (postgresql://…) instead of the embedded one in `home`.
    registry_url: str | None = field(repr=False)
    # How long a direct-batch item's claim holds without a heartbeat (a dead sender's items are
    # settled after this).
    batch_lease_seconds: float
    # Secrets sealing the SDK's multi-round-trip requestState; shared by every replica.
    request_state_keys: tuple[str, ...] = field(repr=False)

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

    def value_of(self, var: EnvVar) -> Any:
        """The effective value `var` resolved to (secrets included: redact before showing)."""
        return getattr(self, var.field)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from `env` (default: os.environ); keyword overrides, by field name, win
        and are read by the same parser as the variable.

        Raises:
            ConfigError: a value is invalid; the message says which and how to fix it.
        """
        env = os.environ if env is None else env
        unknown = sorted(set(overrides) - set(_BY_FIELD))
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(unknown)}")
        raw = {var.field: _raw(var, env, overrides.get(var.field)) for var in VARIABLES}
        values = {var.field: var.value(raw[var.field]) for var in VARIABLES}
        return cls(**_resolve(values, base_url_set=raw["base_url"] is not None))


def _raw(var: EnvVar, env: Mapping[str, str], override: Any) -> str | None:
    """The text to parse for `var`, or None when it is unset (an empty value counts as unset)."""
    if override is not None:
        return str(override).strip() or None
    value = env.get(var.name, "").strip()
    if value:
        return value
    for old in var.old_names:
        value = env.get(old, "").strip()
        if value:
            log.warning(
                "%s is a former name: rename it to %s (the old name will stop working).", old, var.name
            )
            return value
    return None


def _resolve(values: dict[str, Any], *, base_url_set: bool) -> dict[str, Any]:
    """The defaults that depend on other values: `auto` backend, the profile, the base URL."""
    if values["backend"] == "auto":
        values["backend"] = "remote" if values["api_key"] else "emulator"
    if values["backend"] == "remote" and not values["api_key"] and not base_url_set:
        raise ConfigError(
            "SORA_MCP_BACKEND=remote needs OPENAI_API_KEY, or OPENAI_BASE_URL for a server that "
            "takes no key (e.g. a local vLLM-Omni). Set one, or use SORA_MCP_BACKEND=emulator."
        )
    values["base_url"] = values["base_url"] or DEFAULT_BASE_URL
    if values["confirm_above_usd"] == "auto":
        remote = values["backend"] == "remote"
        values["confirm_above_usd"] = DEFAULT_CONFIRM_ABOVE_USD if remote else None
    values["profile"] = values["profile"] or ("emulator" if values["backend"] == "emulator" else "openai")
    return values
