"""Body rewrites of the profile layer: a server's request fields into the contract's, and the
contract's answer into the server's (see `profiles.py` for what each flag means)."""

from __future__ import annotations

import contextlib
import math
import secrets
from collections.abc import Callable
from typing import Any

from sora_mcp import catalog
from sora_mcp.emulator.envelope import WireError, bad_request
from sora_mcp.emulator.profile_ids import outer_id
from sora_mcp.emulator.profiles import EmulatorProfile, Endpoint

Part = str | tuple[str, bytes, str]
Pairs = list[tuple[str, Part]]
Resolve = Callable[..., str]

# OpenRouter's resolution and aspect ratio → the contract's size.
_OPENROUTER_SIZES = {
    ("720p", "16:9"): "1280x720",
    ("720p", "9:16"): "720x1280",
    ("1080p", "16:9"): "1920x1080",
    ("1080p", "9:16"): "1080x1920",
}


# -- requests ----------------------------------------------------------------------------------


def rewrite_json(
    profile: EmulatorProfile, endpoint: Endpoint | None, fields: dict[str, Any], inner: Resolve
) -> tuple[dict[str, Any], str]:
    """The JSON body as the emulator takes it, and the model the client named."""
    fields = dict(fields)
    if endpoint == "create" and profile.openrouter_body:
        fields = _from_openrouter(fields)
    model = str(fields.get("model") or "")
    if endpoint == "create":
        fields = _create_fields(profile, fields)
    if isinstance(fields.get("seconds"), int) and (profile.seconds_as_int or profile.openrouter_body):
        fields["seconds"] = str(fields["seconds"])
    video = fields.get("video")
    if endpoint in ("edits", "extensions") and isinstance(video, dict) and isinstance(video.get("id"), str):
        fields["video"] = {**video, "id": inner(video["id"])}
    characters = fields.get("characters")
    if isinstance(characters, list):
        fields["characters"] = [
            {**item, "id": inner(item["id"], character=True)}
            if isinstance(item, dict) and isinstance(item.get("id"), str)
            else item
            for item in characters
        ]
    return fields, model


def rewrite_form(
    profile: EmulatorProfile, endpoint: Endpoint | None, pairs: Pairs, inner: Resolve
) -> tuple[Pairs, str]:
    """The multipart parts as the emulator takes them, and the model the client named."""
    model = next((v for k, v in pairs if k == "model" and isinstance(v, str)), "")
    if endpoint == "characters" and profile.character_route_fields:
        routing = [v for k, v in pairs if k in profile.character_route_fields and isinstance(v, str) and v]
        if not routing:
            raise WireError(
                500,
                f"The {profile.name} gateway found no model to route this character to; send one of "
                f"{', '.join(profile.character_route_fields)}.",
            )
        model = routing[0]
        pairs = [(k, v) for k, v in pairs if k not in profile.character_route_fields]
    out: Pairs = []
    for key, value in pairs:
        if endpoint == "create" and key in profile.extra_create_fields:
            continue
        if isinstance(value, str):
            if key == "model" and endpoint == "create":
                value = _model(profile, value)
            elif key in ("video[id]",) and endpoint in ("edits", "extensions"):
                value = inner(value)
            elif key in ("characters[][id]",) or (key.startswith("characters[") and key.endswith("[id]")):
                value = inner(value, character=True)
        out.append((key, value))
    return out, model


def _create_fields(profile: EmulatorProfile, fields: dict[str, Any]) -> dict[str, Any]:
    for name in profile.extra_create_fields:
        fields.pop(name, None)
    if isinstance(fields.get("model"), str):
        fields["model"] = _model(profile, fields["model"])
    return fields


def _model(profile: EmulatorProfile, model: str) -> str:
    if profile.model_prefix:
        if not model.startswith(profile.model_prefix):
            raise bad_request(
                f"model must be written provider/model, e.g. '{profile.model_prefix}sora-2'; got {model!r}.",
                param="model",
                code="invalid_model",
            )
        model = model.removeprefix(profile.model_prefix)
    if profile.any_model and catalog.resolve_model(model) is None:
        return catalog.DEFAULT_MODEL
    return model


def _from_openrouter(fields: dict[str, Any]) -> dict[str, Any]:
    dropped = ("duration", "resolution", "aspect_ratio", "frame_images", "provider")
    body = {k: v for k, v in fields.items() if k not in dropped}
    if "duration" in fields:
        body["seconds"] = str(fields["duration"])
    resolution = str(fields.get("resolution", "720p"))
    aspect = str(fields.get("aspect_ratio", "9:16"))
    size = _OPENROUTER_SIZES.get((resolution, aspect))
    if size is None:
        raise bad_request(f"Unsupported resolution/aspect_ratio {resolution} {aspect}.", param="resolution")
    body["size"] = size
    frames = fields.get("frame_images")
    if isinstance(frames, list) and frames:
        first = frames[0]
        url = first.get("image_url", {}).get("url") if isinstance(first, dict) else None
        if isinstance(url, str):
            body["input_reference"] = {"image_url": url}
    return body


def encode_multipart(pairs: Pairs) -> tuple[bytes, str]:
    """A multipart/form-data body of `pairs` and its boundary."""
    boundary = secrets.token_hex(16)
    chunks: list[bytes] = []
    for key, value in pairs:
        chunks.append(f"--{boundary}\r\n".encode())
        if isinstance(value, str):
            chunks.append(f'Content-Disposition: form-data; name="{key}"\r\n\r\n'.encode())
            chunks.append(value.encode())
        else:
            filename, content, mime = value
            chunks.append(
                f'Content-Disposition: form-data; name="{key}"; filename="{filename}"\r\n'
                f"Content-Type: {mime}\r\n\r\n".encode()
            )
            chunks.append(content)
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), boundary


# -- answers -----------------------------------------------------------------------------------


def rewrite_answer(
    profile: EmulatorProfile, endpoint: Endpoint | None, data: dict[str, Any], model: str, base: str
) -> dict[str, Any]:
    """A successful JSON answer as this server would give it."""
    kind = data.get("object")
    if kind == "video":
        return _video(profile, endpoint, data, model, base)
    if kind == "list" and endpoint == "list":
        items = [_video(profile, endpoint, item, model, base) for item in data.get("data", [])]
        out = {**data, "data": items}
        for key in ("first_id", "last_id"):
            if isinstance(data.get(key), str):
                out[key] = outer_id(
                    profile.id_style, data[key], model=_model_of(profile, endpoint, data, model)
                )
        return out
    if kind == "character":
        return {**data, "id": outer_id(profile.id_style, str(data["id"]), model=model, character=True)}
    if kind == "video.deleted":
        out = {**data, "id": outer_id(profile.id_style, str(data["id"]), model="")}
        if profile.delete_status_field:
            out.update(object="video", status="deleted")
        return out
    return data


def _model_of(profile: EmulatorProfile, endpoint: Endpoint | None, data: dict[str, Any], model: str) -> str:
    if profile.forgets_model and endpoint != "create":
        return ""
    return model or str(data.get("model") or "")


def _video(
    profile: EmulatorProfile, endpoint: Endpoint | None, data: dict[str, Any], model: str, base: str
) -> dict[str, Any]:
    out = dict(data)
    routed = _model_of(profile, endpoint, data, model)
    for key in ("id", "remixed_from_video_id"):
        if isinstance(out.get(key), str):
            out[key] = outer_id(profile.id_style, out[key], model=routed)
    status = out.get("status")
    if isinstance(status, str):
        out["status"] = profile.status_words.get(status, status)
    if profile.seconds_as_int and isinstance(out.get("seconds"), str):
        with contextlib.suppress(ValueError):
            out["seconds"] = math.ceil(float(out["seconds"]))
    for name in profile.dropped_fields:
        out.pop(name, None)
    if profile.openrouter_body:
        out["polling_url"] = f"{base}/videos/{out['id']}"
    return out
