"""Routes for files (batch input and output, image references) and batches."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from sora_mcp.emulator.batches import batch_json, cancel_batch, create_batch
from sora_mcp.emulator.envelope import bad_request, not_found
from sora_mcp.emulator.routes_videos import jobs_of
from sora_mcp.emulator.store import BatchRecord, FileRecord, new_id
from sora_mcp.emulator.validation import read_body, reject_unknown, require_text

# What `POST /files` accepts as `purpose` (the SDK's FilePurpose).
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
# Files uploaded for batches expire after 30 days on the real service.
_BATCH_FILE_LIFETIME = 30 * 24 * 3600


def file_json(record: FileRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "object": "file",
        "bytes": record.bytes,
        "created_at": record.created_at,
        "filename": record.filename,
        "purpose": record.purpose,
        "status": "processed",
        "expires_at": record.expires_at,
        "status_details": None,
    }


async def create_file(request: Request) -> Response:
    """`POST /files`: multipart `file` and `purpose` (`expires_after[...]` accepted, ignored)."""
    jobs = jobs_of(request)
    body = await read_body(request, json_ok=False)
    reject_unknown(body, {"file", "purpose", "expires_after"})
    purpose = require_text(body.fields, "purpose", max_chars=64)
    if purpose not in PURPOSES:
        raise bad_request(
            f"Invalid value: '{purpose}'. Supported purposes are: {', '.join(PURPOSES)}.",
            param="purpose",
            code="invalid_value",
        )
    upload = body.uploads.get("file")
    if upload is None:
        raise bad_request(
            "Missing required parameter: 'file' (uploaded as multipart/form-data).",
            param="file",
            code="missing_required_parameter",
        )
    now = int(jobs.now())
    record = FileRecord(
        id=new_id("file-", 24),
        bytes=len(upload.content),
        created_at=now,
        filename=upload.filename,
        purpose=purpose,
        expires_at=now + _BATCH_FILE_LIFETIME if purpose == "batch" else None,
    )
    jobs.store.save_file(record, upload.content)
    return JSONResponse(file_json(record))


async def retrieve_file(request: Request) -> Response:
    return JSONResponse(file_json(_file(request)))


async def file_content(request: Request) -> Response:
    record = _file(request)
    path = jobs_of(request).store.file_content_path(record.id)
    return FileResponse(path, media_type="application/octet-stream")


def _file(request: Request) -> FileRecord:
    file_id = request.path_params["file_id"]
    record = jobs_of(request).store.get_file(file_id)
    if record is None:
        raise not_found("file", file_id)
    return record


async def create_batch_route(request: Request) -> Response:
    jobs = jobs_of(request)
    body = await read_body(request, multipart_ok=False)
    return JSONResponse(batch_json(jobs, create_batch(jobs, body.fields)))


async def retrieve_batch(request: Request) -> Response:
    jobs = jobs_of(request)
    return JSONResponse(batch_json(jobs, _batch(request)))


async def cancel_batch_route(request: Request) -> Response:
    jobs = jobs_of(request)
    return JSONResponse(batch_json(jobs, cancel_batch(jobs, _batch(request))))


def _batch(request: Request) -> BatchRecord:
    batch_id = request.path_params["batch_id"]
    record = jobs_of(request).store.get_batch(batch_id)
    if record is None:
        raise not_found("batch", batch_id)
    return record


def batch_routes() -> list[Route]:
    return [
        Route("/files", create_file, methods=["POST"]),
        Route("/files/{file_id}", retrieve_file, methods=["GET"]),
        Route("/files/{file_id}/content", file_content, methods=["GET"]),
        Route("/batches", create_batch_route, methods=["POST"]),
        Route("/batches/{batch_id}", retrieve_batch, methods=["GET"]),
        Route("/batches/{batch_id}/cancel", cancel_batch_route, methods=["POST"]),
    ]
