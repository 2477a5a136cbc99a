"""Per-backend differences of the Videos wire format, held as data.

Many servers speak the OpenAI Videos contract (OpenAI itself, Azure, gateways such as LiteLLM,
model servers) and each bends it a little: another auth header, a query parameter on every call,
`processing` instead of `in_progress`, integer `seconds`, no remix. A `BackendProfile` records
those bends so that `VideosClient` has one code path and a new backend is a new value, not a
new branch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from sora_mcp.api.capabilities import ALL_CAPABILITIES, Capability, check_capabilities
from sora_mcp.api.retry import RETRY_AFTER_PREFIXES
from sora_mcp.config import PROFILE_NAMES

__all__ = ["ALL_CAPABILITIES", "EMULATOR", "OPENAI", "PROFILES", "BackendProfile", "Capability"]

# Statuses other servers use, mapped onto the four of the contract. Cancelled, expired and
# deleted jobs will never produce a video, so for a caller waiting on one they are failures.
_DEFAULT_STATUS_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "processing": "in_progress",
        "pending": "queued",
        "running": "in_progress",
        "succeeded": "completed",
        "done": "completed",
        "cancelled": "failed",
        "expired": "failed",
        "deleted": "failed",
    }
)


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class BackendProfile:
    """How one backend bends the Videos wire format.

    `path_prefix` is inserted between the HTTP client's `base_url` (which usually ends in `/v1`)
    and every endpoint path (`/videos`, `/files`, `/batches`).
    """

    name: str = "openai"
    auth_header: str = "Authorization"
    # None sends the raw key as the header value (Azure's `api-key`, LiteLLM's own header).
    auth_scheme: str | None = "Bearer"
    path_prefix: str = ""
    extra_query: Mapping[str, str] = field(default_factory=_empty)
    extra_headers: Mapping[str, str] = field(default_factory=_empty)
    status_aliases: Mapping[str, str] = field(default_factory=lambda: _DEFAULT_STATUS_ALIASES)
    seconds_encoding: Literal["string", "int"] = "string"
    create_multipart_only: bool = False
    capabilities: frozenset[Capability] = ALL_CAPABILITIES
    """The optional endpoints this backend declares; `VideosClient.capabilities` adds what it
    showed at run time."""

    # --- what a gateway or model server needs besides ---------------------------------------
    billable_headers: Mapping[str, str] = field(default_factory=_empty)
    """Sent with every billable POST: stops a gateway that retries a failed POST on its own
    (each retry would start, and bill, another job)."""
    retry_after_prefixes: tuple[str, ...] = RETRY_AFTER_PREFIXES
    """Where the wait is read from: `retry-after(-ms)`, then LiteLLM's `llm_provider-…`."""
    character_fields: Mapping[str, str] = field(default_factory=_empty)
    """Form fields a character upload must carry (`{model}` becomes the model to route to)."""
    model_prefix: str = ""
    """Put before every model name (Bifrost routes `provider/model`)."""
    strict_models: bool = True
    """Only the catalogue's models (OpenAI's). Elsewhere model names are the server's (a
    deployment, a LiteLLM model_name, one open-weights model): any passes through, unpriced."""
    body_style: Literal["openai", "openrouter"] = "openai"
    """OpenRouter's create body: `duration`, `resolution`/`aspect_ratio`, `frame_images`."""
    content_params: Mapping[str, str] = field(default_factory=_empty)
    """Query for downloads instead of `variant` (OpenRouter: `index=0`)."""
    id_shape: str = "opaque short ids (`video_…`)"
    retries_note: str | None = None
    """How to stop a gateway's own retries when no request header can (said in the README)."""

    def __post_init__(self) -> None:
        # A profile may be built from untyped data; a misspelt capability must not pass quietly.
        object.__setattr__(self, "capabilities", check_capabilities(frozenset(self.capabilities)))

    def normalise_status(self, status: str) -> str:
        """The contract's status for whatever this backend sent; unknown values pass through
        (lower-cased) so a new status is visible rather than silently rewritten."""
        key = status.strip().lower()
        return self.status_aliases.get(key, key)

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        """The header carrying `api_key` in this backend's style; empty when there is no key."""
        if not api_key:
            return {}
        value = f"{self.auth_scheme} {api_key}" if self.auth_scheme else api_key
        return {self.auth_header: value}


OPENAI = BackendProfile()
EMULATOR = BackendProfile(name="emulator")
_CORE: frozenset[Capability] = frozenset({"list", "delete"})


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


AZURE = BackendProfile(
    name="azure",
    auth_header="api-key",
    auth_scheme=None,
    capabilities=frozenset({"list", "delete", "remix", "variants"}),
    strict_models=False,
)
LITELLM = BackendProfile(
    name="litellm",
    billable_headers=_frozen({"x-litellm-num-retries": "0"}),
    # 1.106: `variant` is ignored; list and DELETE have no route; the ids returned by remix,
    # edits and extensions lose their deployment and cannot be polled. Characters route only
    # with a model named in the form.
    capabilities=frozenset({"characters"}),
    character_fields=_frozen({"target_model_names": "{model}"}),
    strict_models=False,
    id_shape="`video_` + base64 of the gateway's routing data (158 characters on 1.106, 266 on 1.110)",
)
BIFROST = BackendProfile(
    name="bifrost",
    capabilities=frozenset({"list", "delete", "remix", "variants"}),
    model_prefix="openai/",
    strict_models=False,
    id_shape="`<provider id>:<provider>`",
    retries_note="Bifrost retries failed requests per provider (`network_config.max_retries`); set it "
    "to 0 for the provider that serves video, or a failed create may be sent, and billed, twice.",
)
VLLM_OMNI = BackendProfile(
    name="vllm-omni",
    seconds_encoding="int",
    create_multipart_only=True,
    capabilities=_CORE,
    strict_models=False,
    id_shape="`video_gen_<hex>`",
)
SGLANG = BackendProfile(name="sglang", seconds_encoding="int", capabilities=_CORE, strict_models=False)
AQUILES = BackendProfile(name="aquiles", capabilities=_CORE, strict_models=False)
OPENROUTER = BackendProfile(
    name="openrouter",
    seconds_encoding="int",
    body_style="openrouter",
    content_params=_frozen({"index": "0"}),
    capabilities=frozenset(),
    strict_models=False,
    retries_note="OpenRouter may route a failed request to another provider (its `provider.allow_fallbacks`); "
    "sora-mcp sends `allow_fallbacks: false` on every create.",
)

PROFILES: dict[str, BackendProfile] = {
    profile.name: profile
    for profile in (OPENAI, EMULATOR, AZURE, LITELLM, BIFROST, VLLM_OMNI, SGLANG, AQUILES, OPENROUTER)
}
"""The profiles by name. Settings validates SORA_MCP_PROFILE against `config.PROFILE_NAMES`
(the base layer cannot import this module), so the two lists must name the same profiles."""

if set(PROFILES) != set(PROFILE_NAMES):  # a new profile is a name there and a value here
    raise ImportError(
        f"config.PROFILE_NAMES {sorted(PROFILE_NAMES)} and api.profile.PROFILES {sorted(PROFILES)} differ"
    )


DETECTING_HEADERS: Mapping[str, str] = MappingProxyType({"x-litellm-version": "litellm"})
"""Answer headers that give a backend away: a probe that sees one knows the profile."""


def detect_profile(headers: Mapping[str, str]) -> str | None:
    """The profile an answer's headers reveal, or None when they do not tell."""
    lowered = {key.lower() for key in headers}
    return next((name for header, name in DETECTING_HEADERS.items() if header in lowered), None)
