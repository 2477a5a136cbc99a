"""Id shapes of the servers the emulator can pretend to be: how an emulator id is shown to the
client (`outer`) and read back (`inner`, None when the server could not resolve it).

- `litellm`: `video_` + base64 of `litellm:custom_llm_provider:openai;model_id:M;video_id:ID`
  (characters: `character_` + …`;character_id:ID`), standard alphabet with padding, so ids
  carry `+`, `/` and `=`. An empty model id cannot be routed.
- `bifrost`: `ID:openai`.
- `vllm`: `video_gen_<hex>`.
"""

from __future__ import annotations

import base64
import binascii

from sora_mcp.emulator.profiles import IdStyle

_LITELLM_VIDEO = "litellm:custom_llm_provider:openai;model_id:{model};video_id:{id}"
_LITELLM_CHARACTER = "litellm:custom_llm_provider:openai;model_id:{model};character_id:{id}"
_BIFROST_SUFFIX = ":openai"


def outer_id(style: IdStyle, inner: str, *, model: str = "", character: bool = False) -> str:
    if style == "litellm":
        template, prefix = (_LITELLM_CHARACTER, "character_") if character else (_LITELLM_VIDEO, "video_")
        return prefix + base64.b64encode(template.format(model=model, id=inner).encode()).decode()
    if style == "bifrost":
        return inner + _BIFROST_SUFFIX
    if style == "vllm" and inner.startswith("video_") and not character:
        return "video_gen_" + inner.removeprefix("video_")
    return inner


def inner_id(style: IdStyle, outer: str, *, character: bool = False) -> str | None:
    """The emulator's id for `outer`, or None when this server could not resolve it."""
    if style == "litellm":
        return _litellm_inner(outer, character=character)
    if style == "bifrost":
        return outer.removesuffix(_BIFROST_SUFFIX) if outer.endswith(_BIFROST_SUFFIX) else None
    if style == "vllm" and not character:
        return "video_" + outer.removeprefix("video_gen_") if outer.startswith("video_gen_") else None
    return outer


def _litellm_inner(outer: str, *, character: bool) -> str | None:
    prefix, key = ("character_", "character_id:") if character else ("video_", "video_id:")
    if not outer.startswith(prefix):
        return None
    try:
        text = base64.b64decode(outer.removeprefix(prefix), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    parts = dict(part.split(":", 1) for part in text.removeprefix("litellm:").split(";") if ":" in part)
    if not parts.get("model_id") or not parts.get(key.rstrip(":")):
        # No deployment to route to: the real gateway sends it to its default upstream and fails.
        return None
    return parts[key.rstrip(":")]
