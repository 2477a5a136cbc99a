"""How each server that speaks the Videos wire bends it, as data the emulator can reproduce.

`sora-mcp emulator --profile NAME` (and the in-process emulator under `SORA_MCP_PROFILE`) puts
`profile_layer.ProfileLayer` in front of the contract emulator; the layer reads one
`EmulatorProfile` and translates requests and answers so the client meets the same differences
it would meet on the real server: id shapes, status words, multipart-only create, integer
seconds, missing endpoints, an ignored `variant`, renamed or dropped headers, unknown ids
answering 500, and a gateway that re-sends a failed billable POST upstream.

The facts come from `docs/backends.md` (measured through LiteLLM 1.106.12; read from the
sources of the others). The client's own view of a backend is `api/profile.py`; the two are
kept apart on purpose (the emulator imports no client code), and tests check they agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from sora_mcp.config import PROFILE_NAMES

Endpoint = Literal[
    "create", "list", "retrieve", "delete", "content", "remix", "edits", "extensions",
    "characters", "files", "batches",
]  # fmt: skip
IdStyle = Literal["plain", "litellm", "bifrost", "vllm"]


def _frozen(mapping: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping or {}))


def _absent(mapping: Mapping[Endpoint, int] | None = None) -> Mapping[Endpoint, int]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class EmulatorProfile:
    """One server's differences from the contract. Every field's default is the contract."""

    name: str
    id_style: IdStyle = "plain"
    # Contract status → the word this server uses instead.
    status_words: Mapping[str, str] = field(default_factory=_frozen)
    seconds_as_int: bool = False
    """Answers carry `seconds` as an integer; JSON requests may send one."""
    multipart_only_create: bool = False
    absent: Mapping[Endpoint, int] = field(default_factory=_absent)
    """Endpoints the server lacks, with the status it answers (404 no route, 405 no method)."""
    ignores_variant: bool = False
    """`GET /content?variant=thumbnail` returns the MP4, as if no variant had been asked."""
    renamed_headers: Mapping[str, str] = field(default_factory=_frozen)
    dropped_headers: frozenset[str] = frozenset()
    dropped_fields: frozenset[str] = frozenset()
    unknown_id_status: int = 404
    """What an id the server cannot resolve answers (a gateway that cannot route it: 500)."""
    retry_statuses: frozenset[int] = frozenset()
    retries: int = 0
    """A gateway that re-sends a POST upstream after one of `retry_statuses`, this many times."""
    no_retry_header: str | None = None
    """The request header whose value `0` stops those retries."""
    character_route_fields: tuple[str, ...] = ()
    """A character request must carry one of these form fields (else the gateway routes it
    nowhere and answers 500); they are consumed by the gateway, not forwarded."""
    forgets_model: bool = False
    """LiteLLM 1.106: ids in answers to GET, remix, edit and extension lack the model, so the
    gateway cannot route them later (500)."""
    extra_create_fields: frozenset[str] = frozenset()
    """Fields the server accepts on create beyond the contract (consumed, not forwarded)."""
    model_prefix: str = ""
    """Bifrost: `model` must be `provider/model`."""
    any_model: bool = False
    """One model per server (vLLM-Omni) or a deployment name (Azure): any `model` is taken."""
    api_key_header: str | None = None
    """Azure: the key arrives in this header instead of `Authorization: Bearer`."""
    openrouter_body: bool = False
    """OpenRouter's create body (`duration`, `resolution`/`aspect_ratio`, `frame_images`),
    answered 202 with a `polling_url`."""
    delete_status_field: bool = False
    """SGLang: DELETE answers `status: "deleted"` on the video object."""
    extra_headers: Mapping[str, str] = field(default_factory=_frozen)
    """Headers the server adds to every answer (LiteLLM names its version)."""


_CORE_ONLY: Mapping[Endpoint, int] = {
    "remix": 404, "edits": 404, "extensions": 404, "characters": 404, "files": 404, "batches": 404,
}  # fmt: skip
_LITELLM_VERSION = "1.106.12"

_PROFILES = (
    EmulatorProfile(name="openai"),
    EmulatorProfile(name="emulator"),
    EmulatorProfile(
        name="azure",
        api_key_header="api-key",
        any_model=True,
        absent=_absent({"edits": 404, "extensions": 404, "characters": 404, "batches": 404, "files": 404}),
    ),
    EmulatorProfile(
        name="litellm",
        id_style="litellm",
        absent=_absent({"delete": 405, "list": 500}),
        ignores_variant=True,
        renamed_headers=_frozen(
            {"retry-after": "llm_provider-retry-after", "retry-after-ms": "llm_provider-retry-after-ms"}
        ),
        dropped_headers=frozenset({"openai-poll-after-ms", "x-request-id"}),
        dropped_fields=frozenset({"prompt"}),
        unknown_id_status=500,
        retry_statuses=frozenset({429, 500, 502, 503, 504}),
        retries=2,
        no_retry_header="x-litellm-num-retries",
        character_route_fields=("target_model_names", "model"),
        forgets_model=True,
        extra_headers=_frozen({"x-litellm-version": _LITELLM_VERSION}),
    ),
    EmulatorProfile(
        name="bifrost",
        id_style="bifrost",
        model_prefix="openai/",
        absent=_absent({"edits": 404, "extensions": 404, "characters": 404, "batches": 404, "files": 404}),
    ),
    EmulatorProfile(
        name="vllm-omni",
        id_style="vllm",
        multipart_only_create=True,
        seconds_as_int=True,
        any_model=True,
        ignores_variant=True,
        absent=_absent(_CORE_ONLY),
        extra_create_fields=frozenset(
            {
                "seed",
                "negative_prompt",
                "fps",
                "num_frames",
                "width",
                "height",
                "num_inference_steps",
                "guidance_scale",
                "generate_sound",
                "lora",
                "extra_params",
            }
        ),
    ),
    EmulatorProfile(
        name="sglang",
        seconds_as_int=True,
        status_words=_frozen({"in_progress": "queued"}),
        ignores_variant=True,
        delete_status_field=True,
        absent=_absent(_CORE_ONLY),
    ),
    EmulatorProfile(
        name="aquiles",
        status_words=_frozen({"in_progress": "processing"}),
        ignores_variant=True,
        absent=_absent(_CORE_ONLY),
    ),
    EmulatorProfile(
        name="openrouter",
        openrouter_body=True,
        seconds_as_int=True,
        status_words=_frozen({"queued": "pending"}),
        ignores_variant=True,
        absent=_absent({**_CORE_ONLY, "list": 404, "delete": 404}),
    ),
)

EMULATOR_PROFILES: Mapping[str, EmulatorProfile] = MappingProxyType({p.name: p for p in _PROFILES})
assert set(PROFILE_NAMES) <= set(EMULATOR_PROFILES), "every profile name needs an emulator profile"


def emulator_profile(name: str | None) -> EmulatorProfile:
    """The profile called `name` (None: the plain contract). Raises ValueError naming the choices."""
    if name is None:
        return EMULATOR_PROFILES["emulator"]
    try:
        return EMULATOR_PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(EMULATOR_PROFILES)}") from None
