"""The one exception tree of sora-mcp. Every layer raises these; the MCP adapter turns them
into tool errors in one place, so messages here are written for the model that will read them:
what went wrong, and what to do next.

    SoraError
    ├── ConfigError                 bad settings at start (says which variable and the fix)
    ├── InvalidRequest              bad input caught before any request is sent
    ├── RegistryError               the local registry cannot be read or written safely
    ├── TemplateError               a prompt template or guide file is malformed (names the file)
    ├── LocalFileError              a file here could not be read or written (disk full, …)
    ├── AssetExpired                the backend no longer has the files of a completed video
    ├── SpendNotConfirmed           a billable call waits for the user's yes (nothing was sent)
    └── APIError                    anything the Videos API said or failed to say
        ├── APIConnectionError      no answer at all (DNS, refused, reset)
        │   └── APITimeoutError     the request timed out
        ├── OutcomeUnknown          a billable POST may or may not have started a job
        └── APIStatusError          an HTTP error answer (status, code, request id kept)
            ├── BadRequestError         400
            ├── AuthenticationError     401
            ├── PermissionDeniedError   403
            ├── NotFoundError           404
            ├── ConflictError           409
            ├── GoneError               410 (retired model or deleted asset)
            ├── UnprocessableError      422
            ├── RateLimitError          429
            └── ServerError             ≥500
"""

from __future__ import annotations

from typing import ClassVar


class SoraError(Exception):
    """Base of every error sora-mcp raises on purpose.

    Besides its message, every error carries machine-readable fields the MCP adapter hands to the
    client, so a program can act on them without reading prose: `kind` (one per class, stable),
    `code` (a specific reason where the raiser or the backend gives one, else None) and `param`
    (the argument at fault, when there is one)."""

    kind: ClassVar[str] = "error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


class ConfigError(SoraError):
    """Settings are missing or wrong; the message names the variable and the fix."""

    kind = "config_error"


class InvalidRequest(SoraError):
    """Input rejected before anything was sent; the message says what is allowed."""

    kind = "invalid_request"


class RegistryError(SoraError):
    """The registry refused to read or write a row (unsafe format, wrong schema, disk trouble)."""

    kind = "registry_error"


class TemplateError(SoraError):
    """A prompt template or guide file is malformed; the message names the file and the fault."""

    kind = "template_error"


class SpendNotConfirmed(SoraError):
    """A billable call above SORA_MCP_CONFIRM_ABOVE_USD was not sent: the user has not agreed.

    `code` says why: `confirmation_needed` (a quote; `confirm_token` lets the same call through
    once), `token_expired` / `token_unknown` / `token_mismatch` (a token that cannot be used;
    a fresh quote and token come with it), `declined` or `dismissed` (the user was asked)."""

    kind = "not_confirmed"

    def __init__(
        self,
        message: str,
        *,
        code: str,
        confirm_token: str | None = None,
        estimated_cost_usd: float | None = None,
    ) -> None:
        super().__init__(message, code=code, param="confirm_token" if confirm_token else None)
        self.confirm_token = confirm_token
        self.estimated_cost_usd = estimated_cost_usd


class LocalFileError(SoraError):
    """A file on this machine could not be read or written (disk full, permissions, a path the
    system refuses); the message names the file and what to do."""

    kind = "local_file_error"


class AssetExpired(SoraError):
    """The video completed but its downloadable files have expired on the backend."""

    kind = "asset_expired"


class APIError(SoraError):
    """The Videos API could not be used as asked."""

    kind = "api_error"

    def __init__(
        self,
        message: str,
        *,
        request_id: str | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message, code=code, param=param)
        self.request_id = request_id


class APIConnectionError(APIError):
    """No HTTP answer arrived (DNS failure, refused or reset connection)."""

    kind = "connection_error"


class APITimeoutError(APIConnectionError):
    """The request did not complete within its timeout."""

    kind = "timeout"


class OutcomeUnknown(APIError):
    """A billable request was sent but its answer was lost: a job may exist. Never resubmit
    blindly; look for it in the backend's list of recent jobs first."""

    kind = "outcome_unknown"


class APIStatusError(APIError):
    """The API answered with an HTTP error status and (usually) an error envelope. `code` is the
    backend's own error code when it sent one (e.g. moderation_blocked), else None."""

    kind = "http_error"
    status_code: int = 0

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        param: str | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id, code=code, param=param)
        self.status_code = status_code
        self.error_type = error_type
        self.retry_after = retry_after


class BadRequestError(APIStatusError):
    kind = "bad_request"


class AuthenticationError(APIStatusError):
    kind = "authentication_failed"


class PermissionDeniedError(APIStatusError):
    kind = "permission_denied"


class NotFoundError(APIStatusError):
    kind = "not_found"


class ConflictError(APIStatusError):
    kind = "conflict"


class GoneError(APIStatusError):
    kind = "gone"


class UnprocessableError(APIStatusError):
    kind = "unprocessable"


class RateLimitError(APIStatusError):
    kind = "rate_limited"


class ServerError(APIStatusError):
    kind = "server_error"


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    422: UnprocessableError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The one status → exception ladder."""
    if status_code >= 500:
        return ServerError
    return _BY_STATUS.get(status_code, APIStatusError)
