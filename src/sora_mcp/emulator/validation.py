"""Request bodies and field checks, refusing what the real service refuses, the way it does.

A body is JSON or multipart/form-data (endpoints say which they take). Multipart text fields use
the SDKs' bracket convention (`input_reference[image_url]`, `video[id]`, `characters[][id]`) and
are decoded into the same nested shape a JSON body has, so one set of checks serves both.
Every refusal is a `WireError` 400 with `param` and a code such as `invalid_type`,
`invalid_value`, `missing_required_parameter` or `unknown_parameter`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from sora_mcp import catalog
from sora_mcp.emulator.envelope import bad_request
from sora_mcp.emulator.reference import check_image, resolve_reference_object
from sora_mcp.emulator.store import EmulatorStore

# Text parts of a multipart body may carry a data URL of up to 20 MB.
_MAX_TEXT_PART = catalog.IMAGE_MAX_BYTES * 2
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


@dataclass(frozen=True)
class Upload:
    filename: str
    content: bytes
    content_type: str | None


@dataclass
class Body:
    """A decoded request body: nested fields plus uploaded files by field name."""

    fields: dict[str, Any]
    uploads: dict[str, Upload] = field(default_factory=dict)
    multipart: bool = False

    def names(self) -> set[str]:
        return set(self.fields) | set(self.uploads)


async def read_body(request: Request, *, json_ok: bool = True, multipart_ok: bool = True) -> Body:
    """The body as `Body`. Raises WireError 400 for a content type the endpoint does not take or
    for a body that does not parse."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data" and multipart_ok:
        return await _read_multipart(request)
    if content_type in ("application/json", "") and json_ok:
        raw = await request.body()
        if not raw.strip():
            return Body(fields={})
        try:
            parsed = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_request(
                "We could not parse the JSON body of your request. The body must be a JSON object "
                "sent with Content-Type: application/json."
            ) from exc
        if not isinstance(parsed, dict):
            raise bad_request("The JSON body must be an object.", code="invalid_type")
        return Body(fields=parsed)
    accepted = [
        name for name, ok in (("application/json", json_ok), ("multipart/form-data", multipart_ok)) if ok
    ]
    raise bad_request(
        f"Unsupported Content-Type {content_type or '(none)'!r}; this endpoint takes "
        + " or ".join(accepted)
        + ".",
        code="unsupported_content_type",
    )


async def _read_multipart(request: Request) -> Body:
    try:
        form = await request.form(max_part_size=_MAX_TEXT_PART)
    except (HTTPException, MultiPartException) as exc:
        detail = exc.detail if isinstance(exc, HTTPException) else exc.message
        raise bad_request(f"The multipart body could not be parsed: {detail}.") from exc
    body = Body(fields={}, multipart=True)
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                content = await value.read()
                body.uploads[key] = Upload(value.filename or key, content, value.content_type)
            else:
                assign_form_value(body.fields, key, value)
    finally:
        await form.close()
    return body


def assign_form_value(target: dict[str, Any], key: str, value: str) -> None:
    """Put one multipart text field into `target`, decoding bracket paths:
    `a[b]=v` → `{"a": {"b": v}}`, `a[][id]=v` → `{"a": [{"id": v}]}`, `a[]=v` appends."""
    match = _KEY.match(key)
    if match is None:
        target[key] = value
        return
    path: list[str] = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
    container: Any = target
    for index, segment in enumerate(path):
        last = index == len(path) - 1
        following: str | None = None if last else path[index + 1]
        fresh: Any = None if following is None else ([] if following == "" or following.isdigit() else {})
        if isinstance(container, list):
            if segment == "":
                # Brackets convention: start a new item unless the current one still lacks this key.
                item = container[-1] if container else None
                reuse = isinstance(item, dict) and following is not None and following not in item
                if last:
                    container.append(value)
                    return
                if not reuse:
                    container.append(fresh)
                container = container[-1]
                continue
            position = int(segment) if segment.isdigit() else len(container)
            while len(container) <= position:
                container.append(None)
            if last:
                container[position] = value
                return
            if container[position] is None:
                container[position] = fresh
            container = container[position]
            continue
        if last:
            container[segment] = value
            return
        if not isinstance(container.get(segment), (dict, list)):
            container[segment] = fresh
        container = container[segment]


def reject_unknown(body: Body, allowed: Collection[str], hints: Mapping[str, str] | None = None) -> None:
    for name in sorted(body.names()):
        if name not in allowed:
            hint = (hints or {}).get(name, "")
            raise bad_request(
                f"Unknown parameter: '{name}'.{' ' + hint if hint else ''}",
                param=name,
                code="unknown_parameter",
            )


def require_text(fields: Mapping[str, Any], name: str, *, max_chars: int, min_chars: int = 1) -> str:
    if name not in fields:
        raise bad_request(
            f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
        )
    value = fields[name]
    if not isinstance(value, str):
        raise bad_request(
            f"Invalid type for '{name}': expected a string, but got {_json_type(value)} instead.",
            param=name,
            code="invalid_type",
        )
    if len(value) < min_chars:
        raise bad_request(
            f"Invalid '{name}': string too short. Expected a string with minimum length {min_chars}, "
            f"but got a string with length {len(value)} instead.",
            param=name,
            code="string_below_min_length",
        )
    if len(value) > max_chars:
        raise bad_request(
            f"Invalid '{name}': string too long. Expected a string with maximum length {max_chars}, "
            f"but got a string with length {len(value)} instead.",
            param=name,
            code="string_above_max_length",
        )
    return value


def prompt_of(fields: Mapping[str, Any]) -> str:
    return require_text(fields, "prompt", max_chars=catalog.PROMPT_MAX_CHARS)


def seconds_of(fields: Mapping[str, Any], *, default: str | None) -> str:
    """`seconds` is a STRING on the wire; an integer is refused like the real service does."""
    allowed = ", ".join(f"'{s}'" for s in catalog.SECONDS[:-1]) + f", or '{catalog.SECONDS[-1]}'"
    if "seconds" not in fields:
        if default is None:
            raise bad_request(
                "Missing required parameter: 'seconds'.", param="seconds", code="missing_required_parameter"
            )
        return default
    value = fields["seconds"]
    if not isinstance(value, str):
        raise bad_request(
            f"Invalid type for 'seconds': expected one of {allowed}, but got {_json_type(value)} instead.",
            param="seconds",
            code="invalid_type",
        )
    if value not in catalog.SECONDS:
        raise bad_request(
            f"Invalid value: '{value}'. Supported values are: {allowed}.",
            param="seconds",
            code="invalid_value",
        )
    return value


def model_of(fields: Mapping[str, Any]) -> tuple[str, catalog.ModelSpec]:
    """The model as sent (dated snapshots kept) and its catalogue spec."""
    value = fields.get("model", catalog.DEFAULT_MODEL)
    if not isinstance(value, str):
        raise bad_request(
            f"Invalid type for 'model': expected a string, but got {_json_type(value)} instead.",
            param="model",
            code="invalid_type",
        )
    spec = catalog.resolve_model(value)
    if spec is None:
        names = ", ".join(f"'{m}'" for m in catalog.MODELS)
        raise bad_request(
            f"Invalid value: '{value}'. Supported models are {names} and their dated snapshots "
            "(for example 'sora-2-2025-12-08').",
            param="model",
            code="invalid_value",
        )
    return value, spec


def size_of(fields: Mapping[str, Any], spec: catalog.ModelSpec) -> str:
    value = fields.get("size", catalog.DEFAULT_SIZE)
    if not isinstance(value, str):
        raise bad_request(
            f"Invalid type for 'size': expected a string, but got {_json_type(value)} instead.",
            param="size",
            code="invalid_type",
        )
    if value not in spec.sizes:
        raise bad_request(
            f"Invalid value: '{value}'. Model '{spec.name}' supports sizes: {', '.join(spec.sizes)}.",
            param="size",
            code="invalid_value",
        )
    return value


def video_id_of(body: Body) -> str | Upload:
    """The source of an edit or extension: `video: {"id": …}` or an uploaded `video` file."""
    if "video" in body.uploads:
        if "video" in body.fields:
            raise bad_request(
                "Send either a 'video' file or 'video[id]', not both.", param="video", code="invalid_value"
            )
        return body.uploads["video"]
    if "video" not in body.fields:
        raise bad_request(
            "Missing required parameter: 'video'.", param="video", code="missing_required_parameter"
        )
    value = body.fields["video"]
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or set(value) != {"id"}:
        raise bad_request(
            'Invalid \'video\': expected an object like {"id": "video_..."} or an uploaded video file.',
            param="video",
            code="invalid_type",
        )
    return str(value["id"])


@dataclass(frozen=True)
class CreateRequest:
    """A create request that passed every check."""

    prompt: str
    model: str
    size: str
    seconds: str
    first_frame: bytes | None
    characters: tuple[str, ...]


CREATE_FIELDS = frozenset({"prompt", "model", "seconds", "size", "input_reference", "characters"})
_CREATE_HINTS = {
    "image_input": "The image reference parameter is 'input_reference'.",
    "character_ids": 'Characters are passed as \'characters\': [{"id": "char_..."}].',
    "n": "There is no 'n': each request makes one video.",
    "duration": "The duration parameter is 'seconds' (a string such as \"8\").",
}


def validate_create(body: Body, store: EmulatorStore) -> CreateRequest:
    """Check a `POST /videos` body (JSON, multipart, or a batch line's JSON body)."""
    reject_unknown(body, CREATE_FIELDS, _CREATE_HINTS)
    fields = body.fields
    prompt = prompt_of(fields)
    model, spec = model_of(fields)
    size = size_of(fields, spec)
    seconds = seconds_of(fields, default=catalog.DEFAULT_SECONDS)
    first_frame: bytes | None = None
    if "input_reference" in body.uploads:
        if "input_reference" in fields:
            raise bad_request(
                "Send exactly one input_reference: a file upload or an object, not both.",
                param="input_reference",
                code="invalid_value",
            )
        first_frame = check_image(body.uploads["input_reference"].content, size)
    elif "input_reference" in fields:
        first_frame = resolve_reference_object(fields["input_reference"], size, store)
    names = _character_names(fields.get("characters"), prompt, store) if "characters" in fields else ()
    return CreateRequest(prompt, model, size, seconds, first_frame, names)


def _character_names(value: Any, prompt: str, store: EmulatorStore) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise bad_request(
            'Invalid type for \'characters\': expected an array of objects like {"id": "char_..."}.',
            param="characters",
            code="invalid_type",
        )
    if len(value) > catalog.CHARACTERS_PER_VIDEO:
        raise bad_request(
            f"Too many characters: {len(value)}; a video can use at most {catalog.CHARACTERS_PER_VIDEO}.",
            param="characters",
            code="array_above_max_length",
        )
    names = []
    for index, item in enumerate(value):
        param = f"characters[{index}].id"
        character_id = item.get("id")
        if not isinstance(character_id, str) or set(item) != {"id"}:
            raise bad_request(
                'Each character must be an object like {"id": "char_..."}.', param=param, code="invalid_type"
            )
        record = store.get_character(character_id)
        if record is None:
            raise bad_request(
                f"No character found with id '{character_id}'; create it with POST /videos/characters first.",
                param=param,
                code="character_not_found",
            )
        if record.name not in prompt:
            raise bad_request(
                f"The prompt must mention character '{record.name}' by that exact name to use it.",
                param=param,
                code="character_not_in_prompt",
            )
        names.append(record.name)
    return tuple(names)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if value is None:
        return "null"
    return "a string"
