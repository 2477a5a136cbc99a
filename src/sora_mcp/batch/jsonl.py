"""The Batch API's JSONL files: request lines in, result lines out.

A request line is `{"custom_id", "method": "POST", "url": "/v1/videos", "body": {…}}` with a JSON
body (prompt, model, size, seconds, optional input_reference). Reading is forgiving where the
seed's users are sloppy (`seconds` as an int, a missing custom_id) and strict where a mistake
would be billed or silently dropped (another url, an unknown body field, a malformed reference):
every problem is collected, with its line number, so one answer lists them all.

Result lines (output and error files) are keyed by `custom_id`; a line carries the created
Video in `response.body` when a job existed, and `error` when the line failed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from sora_mcp.api.models import Video

ENDPOINT = "/v1/videos"
BODY_FIELDS = frozenset({"prompt", "model", "size", "seconds", "input_reference"})
CUSTOM_ID_MAX_CHARS = 200


@dataclass(frozen=True)
class RawItem:
    """One requested clip as read from a tool argument or a JSONL line, not yet validated.

    `seconds` is None when the given value could not be read as a whole number; the checks that
    follow report it. `image` is a path, https URL or data URL to prepare; `file_id` a file
    already on the backend, passed through as it is.
    """

    where: str
    """Where the item came from, for messages: "item 3" or "line 3"."""
    custom_id: str | None
    prompt: str
    model: str
    size: str
    seconds: int | None
    image: str | None = None
    file_id: str | None = None


@dataclass(frozen=True)
class ResultLine:
    """One line of a batch's output or error file."""

    custom_id: str
    video: Video | None
    """The job this line created, when one exists (completed, or failed after creation)."""
    error_code: str | None
    error_message: str | None


def parse_requests(text: str, *, defaults: Mapping[str, str]) -> tuple[list[RawItem], list[str]]:
    """The items of a JSONL request file and every problem found in it.

    `defaults` gives `model` and `size` for bodies that omit them (the wire's defaults).
    Blank lines are skipped. Problems are full sentences naming the line (and custom_id).
    """
    items: list[RawItem] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"line {number}"
        try:
            entry = json.loads(raw)
        except ValueError:
            problems.append(f"{where}: not valid JSON.")
            continue
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be a JSON object with custom_id, method, url and body.")
            continue
        custom_id = entry.get("custom_id")
        if custom_id is not None and not isinstance(custom_id, str):
            problems.append(f"{where}: custom_id must be a string.")
            continue
        label = f"{where} ({custom_id!r})" if custom_id else where
        line_problems = _check_envelope(entry, label)
        body = entry.get("body")
        if isinstance(body, dict):
            item, body_problems = _item_from_body(body, where, custom_id, label, defaults)
            line_problems += body_problems
            if item is not None and not line_problems:
                items.append(item)
        problems += line_problems
    return items, problems


def _check_envelope(entry: Mapping[str, Any], label: str) -> list[str]:
    problems = []
    unknown = sorted(set(entry) - {"custom_id", "method", "url", "body"})
    if unknown:
        problems.append(
            f"{label}: unknown field(s) {', '.join(unknown)}; a line has custom_id, method, url, body."
        )
    if entry.get("method") != "POST":
        problems.append(f'{label}: method must be "POST".')
    if entry.get("url") != ENDPOINT:
        problems.append(
            f'{label}: url must be "{ENDPOINT}" (not {entry.get("url")!r}); only video creation can be batched.'
        )
    if not isinstance(entry.get("body"), dict):
        problems.append(f"{label}: body must be a JSON object (prompt, model, size, seconds).")
    return problems


def _item_from_body(
    body: Mapping[str, Any], where: str, custom_id: str | None, label: str, defaults: Mapping[str, str]
) -> tuple[RawItem | None, list[str]]:
    problems = []
    unknown = sorted(set(body) - BODY_FIELDS)
    if unknown:
        problems.append(
            f"{label}: body field(s) {', '.join(unknown)} are not supported in a batch "
            f"(allowed: {', '.join(sorted(BODY_FIELDS))})."
        )
    texts: dict[str, str] = {}
    for name in ("prompt", "model", "size"):
        value = body.get(name, defaults.get(name))
        if not isinstance(value, str):
            problems.append(f"{label}: body.{name} must be a string.")
        else:
            texts[name] = value
    image, file_id, reference_problem = _reference(body.get("input_reference"))
    if reference_problem:
        problems.append(f"{label}: {reference_problem}")
    if problems:
        return None, problems
    return (
        RawItem(
            where=where,
            custom_id=custom_id,
            prompt=texts["prompt"],
            model=texts["model"],
            size=texts["size"],
            seconds=read_seconds(body.get("seconds", defaults.get("seconds"))),
            image=image,
            file_id=file_id,
        ),
        [],
    )


def read_seconds(value: object) -> int | None:
    """`8` or `"8"` → 8; anything else → None (reported by the checks that follow)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _reference(value: object) -> tuple[str | None, str | None, str | None]:
    """(image URL, file id, problem) from a wire `input_reference` object."""
    if value is None:
        return None, None, None
    if isinstance(value, dict) and len(value) == 1:
        ((key, ref),) = value.items()
        if key == "image_url" and isinstance(ref, str) and ref:
            return ref, None, None
        if key == "file_id" and isinstance(ref, str) and ref:
            return None, ref, None
    return (
        None,
        None,
        'input_reference must be {"image_url": "https://… or data:…"} or {"file_id": "file-…"} '
        "(batches take JSON bodies only, so no uploads).",
    )


def request_line(custom_id: str, body: Mapping[str, Any]) -> str:
    """One JSONL request line (without the newline)."""
    return json.dumps(
        {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": dict(body)},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def render_requests(lines: Iterable[tuple[str, Mapping[str, Any]]]) -> bytes:
    """A whole JSONL request file from (custom_id, body) pairs."""
    return "".join(request_line(custom_id, body) + "\n" for custom_id, body in lines).encode("utf-8")


def request_bodies(text: str) -> dict[str, dict[str, Any]]:
    """custom_id → body of a request file this module wrote (trusted: no checks beyond shape)."""
    bodies: dict[str, dict[str, Any]] = {}
    for raw in text.splitlines():
        if raw.strip():
            entry = json.loads(raw)
            bodies[str(entry["custom_id"])] = dict(entry["body"])
    return bodies


def parse_results(text: str) -> dict[str, ResultLine]:
    """custom_id → result from an output or error file. Lines that cannot be read are skipped:
    their items then show as missing from the results, which the caller reports."""
    results: dict[str, ResultLine] = {}
    for raw in text.splitlines():
        try:
            entry = json.loads(raw) if raw.strip() else None
        except ValueError:
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("custom_id"), str):
            continue
        response = entry.get("response")
        body = response.get("body") if isinstance(response, dict) else None
        video = _video(body)
        error = entry.get("error")
        if not isinstance(error, dict) and isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]  # a refused line carries the wire error envelope as its body
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        results[entry["custom_id"]] = ResultLine(
            custom_id=entry["custom_id"],
            video=video,
            error_code=str(code) if code is not None else None,
            error_message=str(message) if message is not None else None,
        )
    return results


def _video(body: object) -> Video | None:
    if not isinstance(body, dict) or body.get("object", "video") != "video" or "id" not in body:
        return None
    try:
        return Video.model_validate(body)
    except ValidationError:
        return None
