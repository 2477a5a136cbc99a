"""The request core under `VideosClient`: auth and URLs per profile, the one boundary where
httpx2 exceptions and HTTP error answers become `sora_mcp.errors`, and the retry loop for reads.

Billable POSTs go through `post(..., billable=True)`, which never retries and turns every
"the request may have arrived but the answer was lost" case into `OutcomeUnknown`.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import quote

import httpx2

from sora_mcp.api.profile import BackendProfile
from sora_mcp.api.redaction import Redactor
from sora_mcp.api.retry import RetryPolicy, parse_retry_after
from sora_mcp.clock import Clock
from sora_mcp.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    GoneError,
    NotFoundError,
    OutcomeUnknown,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnprocessableError,
    status_error_class,
)

T = TypeVar("T")

FormParts = list[tuple[str, tuple[str | None, bytes | str, str | None]]]
"""Multipart parts as httpx2 takes them: `(field, (filename, content, mime))`. A part with no
filename is a plain form field, so every multipart body is built one way."""

# Failures that happen before a single byte of the request left this process: the server
# cannot have acted on it, so even a billable POST is known not to have started anything.
_NOT_SENT: tuple[type[httpx2.RequestError], ...] = (
    httpx2.ConnectError,
    httpx2.ConnectTimeout,
    httpx2.PoolTimeout,
    httpx2.UnsupportedProtocol,
)

_HINTS: dict[type[APIStatusError], str] = {
    BadRequestError: "Fix the request as the message says; sending it unchanged fails again.",
    UnprocessableError: "Fix the request as the message says; sending it unchanged fails again.",
    AuthenticationError: "Check the API key configured for this backend.",
    PermissionDeniedError: "This key may not use this model or endpoint; check the account's access.",
    NotFoundError: "Check the id; the object may have been deleted or may have expired.",
    ConflictError: "The object is in a conflicting state; refresh it and try again.",
    GoneError: "The model or asset no longer exists on this backend.",
    RateLimitError: "Rate limited or out of quota; wait before trying again.",
    ServerError: "The backend failed; try again later.",
}

_MAX_DETAIL_CHARS = 500


def quote_id(object_id: str) -> str:
    """An opaque id made safe as one path segment (LiteLLM ids are base64 with `=` and `/`)."""
    return quote(object_id, safe="")


class HTTPCore:
    """Sends one kind of request each way the contract needs; see the module docstring."""

    def __init__(
        self,
        http: httpx2.AsyncClient,
        *,
        api_key: str | None,
        profile: BackendProfile,
        clock: Clock,
        retry: RetryPolicy,
        rng: random.Random,
        content_timeout: float | None = None,
    ) -> None:
        self.http = http
        # Downloads may wait long for their first byte (a backend can render the file on the
        # first request), so their reads get their own, longer timeout; None keeps the client's.
        self._content_timeout = content_timeout
        self.profile = profile
        self.clock = clock
        self.retry = retry
        self._rng = rng
        self._api_key = api_key
        self.redactor = Redactor(api_key)

    def __repr__(self) -> str:
        return f"HTTPCore(base_url={str(self.http.base_url)!r}, profile={self.profile.name!r})"

    async def read(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        deadline: float | None = None,
    ) -> httpx2.Response:
        """GET or DELETE `path`, retried per the policy but never past `deadline` (clock time)
        when one is given. Raises the translated `APIError`."""
        return await self.retrying(
            lambda: self._send(method, path, params=params, billable=False), deadline=deadline
        )

    async def post(
        self,
        path: str,
        *,
        billable: bool,
        json_body: Mapping[str, Any] | None = None,
        files: FormParts | None = None,
    ) -> httpx2.Response:
        """POST once (a JSON body, or `files` as multipart parts); never retried.

        Raises:
            OutcomeUnknown: `billable` and the request may have reached the server without an
                answer coming back, or the server answered 5xx (the `ServerError` is the cause).
            APIStatusError: any other error answer (a job is known not to have started).
            APIConnectionError: nothing was sent.
        """
        try:
            return await self._send("POST", path, billable=billable, json_body=json_body, files=files)
        except ServerError as exc:
            if not billable:
                raise
            raise OutcomeUnknown(
                f"POST {path} got HTTP {exc.status_code} from the backend, so a job may or may not "
                "have been created. Do not resubmit blindly: list the most recent videos first.",
                request_id=exc.request_id,
            ) from exc

    @asynccontextmanager
    async def stream(
        self, path: str, *, params: Mapping[str, str | int] | None = None
    ) -> AsyncIterator[httpx2.Response]:
        """One streamed GET whose answer is known to be a success. httpx2 errors raised while
        the caller reads the body inside the `async with` are translated too. Not retried by
        itself: wrap the whole transfer in `retrying` so a body cut midway starts over."""
        request = self._build("GET", path, params=params)
        if self._content_timeout is not None:
            base = self.http.timeout
            request["timeout"] = httpx2.Timeout(
                connect=base.connect, read=self._content_timeout, write=base.write, pool=base.pool
            )
        try:
            async with self.http.stream(**request) as response:
                if response.is_error:
                    await response.aread()
                    raise self.status_error(response, "GET", path)
                yield response
        except httpx2.RequestError as exc:
            raise self.translate_transport_error(exc, "GET", path, billable=False) from exc

    async def retrying(self, operation: Callable[[], Awaitable[T]], *, deadline: float | None = None) -> T:
        """Run an idempotent `operation`, retrying retryable `APIError`s per the policy with
        sleeps on the injected clock. A server asking to wait longer than `max_retry_after`
        gets its error raised at once (with `retry_after` set) instead of being waited for; so
        does any error whose retry would sleep past `deadline` (clock time), when one is given."""
        attempt = 0
        while True:
            try:
                return await operation()
            except APIError as exc:
                delay = self._retry_delay(exc, attempt)
                if delay is None or (deadline is not None and self.clock.now() + delay > deadline):
                    raise
            await self.clock.sleep(delay)
            attempt += 1

    def _retry_delay(self, exc: APIError, attempt: int) -> float | None:
        if attempt >= self.retry.max_retries:
            return None
        if isinstance(exc, APIConnectionError):
            return self.retry.backoff(attempt, self._rng)
        if isinstance(exc, APIStatusError) and exc.status_code in self.retry.retry_statuses:
            if exc.retry_after is None:
                return self.retry.backoff(attempt, self._rng)
            if exc.retry_after > self.retry.max_retry_after:
                return None
            return exc.retry_after
        return None

    async def _send(
        self,
        method: str,
        path: str,
        *,
        billable: bool,
        params: Mapping[str, str | int] | None = None,
        json_body: Mapping[str, Any] | None = None,
        files: FormParts | None = None,
    ) -> httpx2.Response:
        request = self._build(method, path, params=params, json_body=json_body, files=files)
        if billable:
            # A gateway that retries on its own would bill a second job for one request.
            request["headers"].update(self.profile.billable_headers)
        try:
            response = await self.http.request(**request)
        except httpx2.RequestError as exc:
            raise self.translate_transport_error(exc, method, path, billable=billable) from exc
        if response.is_error:
            raise self.status_error(response, method, path)
        return response

    def _build(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json_body: Mapping[str, Any] | None = None,
        files: FormParts | None = None,
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "method": method,
            "url": f"{self.profile.path_prefix}{path}",
            "headers": {**self.profile.extra_headers, **self.profile.auth_headers(self._api_key)},
        }
        query = {**self.profile.extra_query, **(params or {})}
        if query:
            request["params"] = query
        if json_body is not None:
            request["json"] = json_body
        if files is not None:
            request["files"] = files
        return request

    def translate_transport_error(
        self, exc: httpx2.RequestError, method: str, path: str, *, billable: bool
    ) -> APIError:
        """The `sora_mcp.errors` counterpart of an httpx2 failure with no HTTP answer."""
        detail = self.redact(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        if billable and not isinstance(exc, _NOT_SENT):
            return OutcomeUnknown(
                f"{method} {path} was sent but no answer came back ({detail}), so a job may or may "
                "not have been created. Do not resubmit blindly: list the most recent videos first."
            )
        where = f"{method} {path} at {self.http.base_url}"
        if isinstance(exc, httpx2.TimeoutException):
            return APITimeoutError(f"{where} timed out ({detail}). Try again, or raise the timeout.")
        return APIConnectionError(
            f"{where} got no answer ({detail}). Check the base URL and that the backend is running."
        )

    def status_error(self, response: httpx2.Response, method: str, path: str) -> APIStatusError:
        """The `APIStatusError` subclass for an error answer whose body has been read."""
        cls = status_error_class(response.status_code)
        # Redacted before anything is parsed or truncated: a cut echo would keep a key's prefix.
        message, code, param, error_type = (
            None if part is None else self.redactor.text(part)
            for part in _parse_envelope(self.redactor.text(response.text))
        )
        message = message or "no error message"
        retry_after = parse_retry_after(
            response.headers, now=self.clock.now(), prefixes=self.profile.retry_after_prefixes
        )
        parts = [f"{method} {path} → HTTP {response.status_code}: {message}"]
        if code:
            parts.append(f"(code {code})")
        hint = _HINTS.get(cls)
        if hint:
            parts.append(hint)
        if retry_after is not None:
            parts.append(f"The backend asks to wait {retry_after:g} s.")
        return cls(
            self.redact(" ".join(parts)),
            status_code=response.status_code,
            code=code,
            param=param,
            error_type=error_type,
            request_id=response.headers.get("x-request-id"),
            retry_after=retry_after,
        )

    def redact(self, text: str) -> str:
        """`text` with the API key and any bearer token masked: servers echo what they were sent."""
        return self.redactor.text(text)


def _parse_envelope(raw: str) -> tuple[str, str | None, str | None, str | None]:
    """(message, code, param, type) from `{"error": {...}}`, or whatever else the body holds:
    gateways answer `{"detail": ...}`, `{"error": "text"}`, HTML pages or nothing."""
    try:
        body: Any = json.loads(raw)
    except ValueError:
        text = raw.strip()
        return (text[:_MAX_DETAIL_CHARS] or "no error message"), None, None, None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return (
            _text(error.get("message")) or "no error message",
            _text(error.get("code")),
            _text(error.get("param")),
            _text(error.get("type")),
        )
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            found = _text(body.get(key))
            if found:
                return found, _text(body.get("code")), None, _text(body.get("type"))
    return _text(body) or "no error message", None, None, None


def _text(value: object) -> str | None:
    if value is None or value == "":
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text[:_MAX_DETAIL_CHARS]


def form_fields(body: Mapping[str, Any]) -> FormParts:
    """A JSON-like body as multipart form fields, nested the way the official SDK does it:
    objects as `key[sub]`, arrays as `key[]` (`characters[][id]`, `input_reference[file_id]`)."""
    parts: FormParts = []

    def add(key: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for sub, item in value.items():
                add(f"{key}[{sub}]", item)
        elif isinstance(value, list | tuple):
            for item in value:
                add(f"{key}[]", item)
        elif isinstance(value, bool):
            parts.append((key, (None, "true" if value else "false", None)))
        else:
            parts.append((key, (None, str(value), None)))

    for key, value in body.items():
        add(key, value)
    return parts
