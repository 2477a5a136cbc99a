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

PROFILES: dict[str, BackendProfile] = {profile.name: profile for profile in (OPENAI, EMULATOR)}
"""The profiles by name. Settings validates SORA_MCP_PROFILE against `config.PROFILE_NAMES`
(the base layer cannot import this module), so the two lists must name the same profiles."""

if set(PROFILES) != set(PROFILE_NAMES):  # a new profile is a name there and a value here
    raise ImportError(
        f"config.PROFILE_NAMES {sorted(PROFILE_NAMES)} and api.profile.PROFILES {sorted(PROFILES)} differ"
    )
