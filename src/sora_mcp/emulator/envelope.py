"""The emulator's error envelope: one exception for every refusal, one way to answer it.

Handlers raise `WireError`; `app.py` turns it into the Videos API envelope
`{"error": {"message", "type", "param", "code"}}`. The request-id header is added by the gate
middleware for every answer, so nothing here has to remember it.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse

REQUEST_ID_HEADER = "x-request-id"

# The `type` the real service puts in the envelope for each status it answers.
_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    410: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "requests",
}


class WireError(Exception):
    """An HTTP error answer with the Videos API error envelope.

    `param` names the offending request field (dotted/bracketed like the real service) so a
    client can point at it; `code` is machine-readable; `headers` adds e.g. Retry-After.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        error_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.error_type = error_type or error_type_for(status)
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The inside of the envelope: message, type, param, code."""
        return {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}

    def envelope(self) -> dict[str, Any]:
        return {"error": self.body()}

    def response(self) -> JSONResponse:
        return JSONResponse(self.envelope(), status_code=self.status, headers=self.headers)


def error_type_for(status: int) -> str:
    if status >= 500:
        return "server_error"
    return _TYPE_BY_STATUS.get(status, "invalid_request_error")


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> WireError:
    return WireError(400, message, param=param, code=code)


def not_found(kind: str, object_id: str, *, param: str | None = None) -> WireError:
    return WireError(404, f"No {kind} found with id '{object_id}'.", param=param, code=f"{kind}_not_found")


def retry_after_headers(seconds: float | None) -> dict[str, str]:
    """Both headers the SDKs read: `retry-after` in whole seconds (RFC 9110 allows no
    fraction, so round up) and `retry-after-ms` with the precise value."""
    if seconds is None:
        return {}
    seconds = max(0.0, seconds)
    return {"retry-after": str(math.ceil(seconds)), "retry-after-ms": str(round(seconds * 1000))}


def new_request_id() -> str:
    return f"req_{secrets.token_hex(16)}"
