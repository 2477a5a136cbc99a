"""Batches of video creations, read against the clock like single jobs.

Creating a batch validates the input file's structure (every line a JSON object with a unique
`custom_id`, `method: "POST"`, `url: "/v1/videos"` and an object `body`); a structural fault
fails the whole batch with `errors`, as the real Batch API does in its validating step. Then each
line's body goes through the same checks as `POST /videos` (JSON form): a refused line becomes
an error-file entry, an accepted one a video job created at the batch's creation time.

The batch is `in_progress` until every job is terminal, then `completed`: on the first read
after that the output file (one line per completed video) and the error file (one line per
refused line or failed video, each with a non-null `error`) are written, with ids derived from
the batch id so that apps sharing the root agree on them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sora_mcp.emulator.envelope import WireError, bad_request
from sora_mcp.emulator.jobs import Jobs
from sora_mcp.emulator.store import BatchItem, BatchRecord, FileRecord, new_id, video_json, video_phase
from sora_mcp.emulator.validation import Body, validate_create

ENDPOINT = "/v1/videos"
COMPLETION_WINDOW = "24h"
WINDOW_SECONDS = 24 * 3600
_METADATA_MAX_KEYS = 16


def create_batch(jobs: Jobs, fields: dict[str, Any]) -> BatchRecord:
    """A new batch from a `POST /batches` JSON body. Raises WireError 400 for a bad request."""
    unknown = sorted(set(fields) - {"input_file_id", "endpoint", "completion_window", "metadata"})
    if unknown:
        raise bad_request(f"Unknown parameter: '{unknown[0]}'.", param=unknown[0], code="unknown_parameter")
    for name in ("input_file_id", "endpoint", "completion_window"):
        if not isinstance(fields.get(name), str):
            raise bad_request(
                f"Missing or invalid required parameter: '{name}' (a string).",
                param=name,
                code="missing_required_parameter",
            )
    if fields["endpoint"] != ENDPOINT:
        raise bad_request(
            f"Invalid value: '{fields['endpoint']}'. This server batches only '{ENDPOINT}'.",
            param="endpoint",
            code="invalid_value",
        )
    if fields["completion_window"] != COMPLETION_WINDOW:
        raise bad_request(
            f"Invalid value: '{fields['completion_window']}'. Supported values are: '{COMPLETION_WINDOW}'.",
            param="completion_window",
            code="invalid_value",
        )
    metadata = _metadata_of(fields.get("metadata"))
    file_id = fields["input_file_id"]
    file = jobs.store.get_file(file_id)
    if file is None:
        raise bad_request(
            f"No file found with id '{file_id}'; upload the JSONL with purpose 'batch' first.",
            param="input_file_id",
            code="file_not_found",
        )
    if file.purpose != "batch":
        raise bad_request(
            f"File '{file_id}' has purpose '{file.purpose}'; batch input files need purpose 'batch'.",
            param="input_file_id",
            code="invalid_value",
        )
    now = jobs.now()
    record = BatchRecord(
        id=new_id("batch_", 32),
        endpoint=ENDPOINT,
        input_file_id=file_id,
        completion_window=COMPLETION_WINDOW,
        created_at=int(now),
        metadata=metadata,
    )
    text = jobs.store.file_content_path(file_id).read_bytes().decode("utf-8", errors="replace")
    lines, errors = _parse_lines(text)
    if errors:
        record.errors = errors
    else:
        for custom_id, body in lines:
            record.items.append(_start_item(jobs, custom_id, body, now))
    jobs.store.save_batch(record)
    return record


def cancel_batch(jobs: Jobs, record: BatchRecord) -> BatchRecord:
    """Cancel an in-progress batch now: finished items keep their results, the rest are
    reported as cancelled. Raises WireError 400 when the batch has already ended."""
    status = batch_json(jobs, record)["status"]
    if status != "in_progress":
        raise bad_request(
            f"Batch '{record.id}' is {status} and can no longer be cancelled.", code="batch_not_cancellable"
        )
    record.cancelled_at = jobs.now()
    _finalize(jobs, record, record.cancelled_at)
    return record


def batch_json(jobs: Jobs, record: BatchRecord) -> dict[str, Any]:
    """The wire Batch at the clock's now, writing the result files the first time it is done."""
    now = jobs.now()
    states = [_item_state(jobs, item, now) for item in record.items]
    finished = all(state[0] != "pending" for state in states)
    if record.errors is None and record.finished_at is None and record.cancelled_at is None and finished:
        _finalize(jobs, record, max([float(record.created_at), *(state[1] for state in states)]))
    if record.finished_at is not None:
        states = [_item_state(jobs, item, record.finished_at) for item in record.items]
    counts = {
        "total": len(record.items),
        "completed": sum(1 for s in states if s[0] == "completed"),
        "failed": sum(1 for s in states if s[0] == "failed"),
    }
    if record.errors is not None:
        status, extra = "failed", {"failed_at": record.created_at}
    elif record.cancelled_at is not None:
        cancelled_at = int(record.cancelled_at)
        status, extra = "cancelled", {"cancelling_at": cancelled_at, "cancelled_at": cancelled_at}
    elif record.finished_at is not None:
        finished_at = int(record.finished_at)
        status, extra = "completed", {"finalizing_at": finished_at, "completed_at": finished_at}
    else:
        status, extra = "in_progress", {}
    return {
        "id": record.id,
        "object": "batch",
        "endpoint": record.endpoint,
        "errors": {"object": "list", "data": record.errors} if record.errors is not None else None,
        "input_file_id": record.input_file_id,
        "completion_window": record.completion_window,
        "status": status,
        "output_file_id": record.output_file_id,
        "error_file_id": record.error_file_id,
        "created_at": record.created_at,
        "in_progress_at": record.created_at if record.errors is None else None,
        "expires_at": record.created_at + WINDOW_SECONDS,
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": counts,
        "metadata": record.metadata,
        **extra,
    }


def _item_state(jobs: Jobs, item: BatchItem, now: float) -> tuple[str, float]:
    """(`completed` | `failed` | `pending`, when it ended or will end)."""
    if item.video_id is None:
        return "failed", float("-inf")
    video = jobs.store.get_video(item.video_id)
    if video is None:
        return "failed", float("-inf")
    phase = video_phase(video, now)
    return (phase.status if phase.terminal else "pending"), phase.ends_at


def _finalize(jobs: Jobs, record: BatchRecord, at: float) -> None:
    outputs: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for item in record.items:
        # Derived, not random: two apps finalizing the same batch write identical files.
        digest = hashlib.sha256(f"{record.id}:{item.custom_id}".encode()).hexdigest()
        line_id, request_id = f"batch_req_{digest[:32]}", f"req_{digest[32:64]}"
        if item.video_id is None:
            message = str((item.error or {}).get("message", "refused"))
            code = (item.error or {}).get("code") or "invalid_request"
            response = {
                "status_code": item.status_code,
                "request_id": request_id,
                "body": {"error": item.error},
            }
            failures.append(_line(line_id, item.custom_id, response, {"code": code, "message": message}))
            continue
        video = jobs.store.get_video(item.video_id)
        if video is None:
            error = {"code": "video_deleted", "message": f"Video '{item.video_id}' was deleted."}
            failures.append(_line(line_id, item.custom_id, None, error))
            continue
        phase = video_phase(video, at)
        body = video_json(video, at)
        response = {"status_code": 200, "request_id": request_id, "body": body}
        if phase.status == "completed":
            outputs.append(_line(line_id, item.custom_id, response, None))
        elif phase.status == "failed":
            failures.append(_line(line_id, item.custom_id, response, body["error"]))
        else:
            error = {
                "code": "batch_cancelled",
                "message": "The batch was cancelled before this video finished.",
            }
            failures.append(_line(line_id, item.custom_id, response, error))
    record.output_file_id = _write_result(jobs, record, "output", outputs, at)
    record.error_file_id = _write_result(jobs, record, "error", failures, at)
    record.finished_at = at
    jobs.store.save_batch(record)


def _line(line_id: str, custom_id: str, response: Any, error: Any) -> dict[str, Any]:
    return {"id": line_id, "custom_id": custom_id, "response": response, "error": error}


def _write_result(
    jobs: Jobs, record: BatchRecord, kind: str, lines: list[dict[str, Any]], at: float
) -> str | None:
    if not lines:
        return None
    file_id = "file-" + hashlib.sha256(f"{record.id}:{kind}".encode()).hexdigest()[:24]
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    file = FileRecord(
        id=file_id,
        bytes=len(content),
        created_at=int(at),
        filename=f"{record.id}_{kind}.jsonl",
        purpose="batch_output",
    )
    jobs.store.save_file(file, content)
    return file_id


def _start_item(jobs: Jobs, custom_id: str, body: dict[str, Any], now: float) -> BatchItem:
    try:
        request = validate_create(Body(fields=body), jobs.store)
    except WireError as exc:
        return BatchItem(custom_id=custom_id, status_code=exc.status, error=exc.body())
    video = jobs.create(request, created_at=now)
    return BatchItem(custom_id=custom_id, video_id=video.id)


def _parse_lines(text: str) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
    lines: list[tuple[str, dict[str, Any]]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()

    def fail(number: int, code: str, message: str, param: str | None = None) -> None:
        errors.append({"code": code, "message": message, "param": param, "line": number})

    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            fail(number, "invalid_json_line", f"Line {number} is not valid JSON.")
            continue
        if not isinstance(entry, dict):
            fail(number, "invalid_request", f"Line {number} must be a JSON object.")
            continue
        custom_id = entry.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            fail(number, "missing_custom_id", f"Line {number} needs a string 'custom_id'.", "custom_id")
        elif custom_id in seen:
            fail(
                number, "duplicate_custom_id", f"custom_id '{custom_id}' appears more than once.", "custom_id"
            )
        if entry.get("method") != "POST":
            fail(number, "invalid_method", f"Line {number}: 'method' must be \"POST\".", "method")
        if entry.get("url") != ENDPOINT:
            fail(number, "invalid_url", f"Line {number}: 'url' must be \"{ENDPOINT}\" for this batch.", "url")
        if not isinstance(entry.get("body"), dict):
            fail(number, "invalid_body", f"Line {number}: 'body' must be a JSON object.", "body")
        if isinstance(custom_id, str) and custom_id:
            seen.add(custom_id)
            if isinstance(entry.get("body"), dict):
                lines.append((custom_id, entry["body"]))
    if not lines and not errors:
        errors.append(
            {
                "code": "empty_file",
                "message": "The input file holds no requests.",
                "param": None,
                "line": None,
            }
        )
    return lines, errors


def _metadata_of(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or len(value) > _METADATA_MAX_KEYS
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    ):
        raise bad_request(
            f"Invalid 'metadata': expected an object of at most {_METADATA_MAX_KEYS} "
            "string keys with string values.",
            param="metadata",
            code="invalid_type",
        )
    return dict(value)
