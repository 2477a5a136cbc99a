"""An ASGI layer that makes the contract emulator look like another server (see `profiles.py`).

It sits outside the emulator's gate: it reads the whole request, refuses what the server would
refuse (a missing endpoint, an id it cannot route, JSON where it takes only multipart), rewrites
what the server would rewrite on the way in (its ids back to the emulator's, integer seconds,
its own body fields), calls the emulator — again, when the server is a gateway that retries a
failed POST — and rewrites the answer on the way out (ids, status words, seconds, dropped
fields, renamed and dropped headers). Every call into the emulator is recorded in `UpstreamLog`,
so a test can prove how many POSTs a client request became upstream.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from urllib.parse import unquote

import anyio
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sora_mcp import catalog
from sora_mcp.emulator import profile_body as body_rules
from sora_mcp.emulator.envelope import WireError, bad_request
from sora_mcp.emulator.profile_body import Pairs
from sora_mcp.emulator.profile_ids import inner_id
from sora_mcp.emulator.profiles import EmulatorProfile, Endpoint


class UpstreamLog:
    """Every request the layer passed to the emulator, as `(method, path)` (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []

    def add(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))

    def count(self, method: str, path_suffix: str = "") -> int:
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and p.endswith(path_suffix))


@dataclass
class _Answer:
    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.decode("latin-1").lower() == name:
                return value.decode("latin-1")
        return None


@dataclass
class _Call:
    """The request as the emulator will see it, plus what the answer's rewrite needs."""

    endpoint: Endpoint | None
    path: str
    query: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    model: str = ""


def classify(method: str, path: str) -> tuple[Endpoint | None, str | None]:
    """`(endpoint, id in the path)` for a path below the API prefix."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return None, None
    if parts[0] in ("files", "batches"):
        return ("files" if parts[0] == "files" else "batches"), None
    if parts[0] != "videos":
        return None, None
    rest = parts[1:]
    if not rest:
        return ("create" if method == "POST" else "list"), None
    if rest[0] in ("edits", "extensions") and len(rest) == 1:
        return ("edits" if rest[0] == "edits" else "extensions"), None
    if rest[0] == "characters":
        return "characters", rest[1] if len(rest) > 1 else None
    if len(rest) == 1:
        return ("delete" if method == "DELETE" else "retrieve"), rest[0]
    if rest[1] == "content":
        return "content", rest[0]
    if rest[1] == "remix":
        return "remix", rest[0]
    return None, None


class ProfileLayer:
    def __init__(self, app: ASGIApp, *, profile: EmulatorProfile, prefix: str, log: UpstreamLog) -> None:
        self.app = app
        self.profile = profile
        self.prefix = prefix
        self.log = log
        # The contract itself needs no rewriting: stream straight through.
        self.plain = profile == EmulatorProfile(name=profile.name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.plain:
            if scope["type"] == "http":
                self.log.add(scope["method"], scope["path"])
            await self.app(scope, receive, send)
            return
        body = await _read_all(receive)
        try:
            call = await self._inbound(scope, body)
            answer = await self._upstream(scope, call, receive)
        except WireError as refusal:
            answer = _Answer(refusal.status, [(b"content-type", b"application/json")])
            answer.body = json.dumps(refusal.envelope()).encode()
            call = None
        await self._send(self._outbound(scope, call, answer), send)

    # -- inbound -------------------------------------------------------------------------------

    async def _inbound(self, scope: Scope, body: bytes) -> _Call:
        profile = self.profile
        method: str = scope["method"]
        path: str = scope["path"]
        local = path.removeprefix(self.prefix)
        endpoint, path_id = classify(method, local)
        if endpoint is not None and endpoint in profile.absent:
            status = profile.absent[endpoint]
            raise WireError(status, f"{method} {path} is not offered by this {profile.name} server.")
        headers = self._auth(list(scope["headers"]))
        query = self._query(scope.get("query_string", b"").decode("latin-1"), endpoint)
        if path_id is not None:
            inner = self._inner(path_id, character=endpoint == "characters")
            path = path.replace(f"/{path_id}", f"/{inner}", 1)
        call = _Call(endpoint, path, query, headers, body)
        if method == "POST" and endpoint in ("create", "remix", "edits", "extensions", "characters"):
            await self._rewrite_body(scope, call)
        return call

    def _auth(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        name = self.profile.api_key_header
        if name is None:
            return headers
        key = next((v for k, v in headers if k.decode("latin-1").lower() == name), None)
        kept = [(k, v) for k, v in headers if k.decode("latin-1").lower() not in (name, "authorization")]
        return [*kept, (b"authorization", b"Bearer " + key)] if key else kept

    def _query(self, query: str, endpoint: Endpoint | None) -> str:
        pairs = [part.partition("=") for part in query.split("&") if part]
        kept = []
        for key, _, value in pairs:
            if key == "api-version" and self.profile.api_key_header is not None:
                continue
            if key in ("variant", "index") and endpoint == "content" and self.profile.ignores_variant:
                continue
            if key == "after" and endpoint == "list":
                value = self._inner(value)
            kept.append(f"{key}={value}")
        return "&".join(kept)

    def _inner(self, outer: str, *, character: bool = False) -> str:
        found = inner_id(self.profile.id_style, unquote(outer), character=character)
        if found is not None:
            return found
        kind = "character" if character else "video"
        if self.profile.unknown_id_status >= 500:
            raise WireError(
                500, f"The {self.profile.name} gateway could not route the {kind} id {outer[:80]!r}."
            )
        raise WireError(404, f"No {kind} found with id '{outer[:80]}'.", code=f"{kind}_not_found")

    async def _rewrite_body(self, scope: Scope, call: _Call) -> None:
        content_type = _header(call.headers, "content-type") or ""
        multipart = content_type.lower().startswith("multipart/form-data")
        if call.endpoint == "create" and self.profile.multipart_only_create and not multipart:
            raise bad_request(
                "This server takes POST /videos as multipart/form-data only.", code="unsupported_content_type"
            )
        if multipart:
            pairs = await _form_pairs(scope, call.body)
            pairs, call.model = body_rules.rewrite_form(self.profile, call.endpoint, pairs, self._inner)
            call.body, boundary = body_rules.encode_multipart(pairs)
            call.headers = _replace(call.headers, "content-type", f"multipart/form-data; boundary={boundary}")
        elif call.body.strip():
            try:
                fields = json.loads(call.body)
            except ValueError:
                return  # the emulator refuses it in its own words
            if isinstance(fields, dict):
                fields, call.model = body_rules.rewrite_json(self.profile, call.endpoint, fields, self._inner)
                call.body = json.dumps(fields).encode()
        call.headers = _replace(call.headers, "content-length", str(len(call.body)))

    # -- upstream ------------------------------------------------------------------------------

    async def _upstream(self, scope: Scope, call: _Call, outer_receive: Receive) -> _Answer:
        profile = self.profile
        retries = 0
        if scope["method"] == "POST" and profile.retries and profile.no_retry_header:
            retries = 0 if _header(call.headers, profile.no_retry_header) == "0" else profile.retries
        while True:
            answer = await self._once(scope, call, outer_receive)
            if retries <= 0 or answer.status not in profile.retry_statuses:
                return answer
            retries -= 1

    async def _once(self, scope: Scope, call: _Call, outer_receive: Receive) -> _Answer:
        self.log.add(scope["method"], call.path)
        inner_scope = dict(scope)
        inner_scope.update(
            path=call.path,
            raw_path=call.path.encode(),
            query_string=call.query.encode("latin-1"),
            headers=call.headers,
        )
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                # The body was read already: what is left to hear is the client going away.
                return await outer_receive()
            sent = True
            return {"type": "http.request", "body": call.body, "more_body": False}

        answer = _Answer(500)

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer.status = message["status"]
                answer.headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                answer.body += message.get("body", b"")
            elif message["type"] == "http.response.pathsend":
                answer.body += await anyio.Path(message["path"]).read_bytes()

        await self.app(inner_scope, receive, capture)
        return answer

    # -- outbound ------------------------------------------------------------------------------

    def _outbound(self, scope: Scope, call: _Call | None, answer: _Answer) -> _Answer:
        profile = self.profile
        content_type = answer.header("content-type") or ""
        if call is not None and content_type.startswith("application/json") and answer.body:
            try:
                data = json.loads(answer.body)
            except ValueError:
                data = None
            if isinstance(data, dict) and 200 <= answer.status < 300:
                base = f"{scope.get('scheme', 'http')}://{_header(call.headers, 'host') or 'localhost'}{self.prefix}"
                data = body_rules.rewrite_answer(profile, call.endpoint, data, call.model, base)
                answer.body = json.dumps(data).encode()
                if profile.openrouter_body and call.endpoint == "create":
                    answer.status = 202
        headers: list[tuple[bytes, bytes]] = []
        for key, value in answer.headers:
            name = key.decode("latin-1").lower()
            if name in profile.dropped_headers or name == "content-length":
                continue
            headers.append((profile.renamed_headers.get(name, name).encode("latin-1"), value))
        headers += [(k.encode(), v.encode()) for k, v in profile.extra_headers.items()]
        headers.append((b"content-length", str(len(answer.body)).encode()))
        answer.headers = headers
        return answer

    @staticmethod
    async def _send(answer: _Answer, send: Send) -> None:
        await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
        await send({"type": "http.response.body", "body": answer.body, "more_body": False})


async def _read_all(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _form_pairs(scope: Scope, body: bytes) -> Pairs:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    request = Request(scope, receive)
    pairs: Pairs = []
    form = await request.form(max_part_size=catalog.IMAGE_MAX_BYTES * 2)
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                content = await value.read()
                pairs.append(
                    (key, (value.filename or key, content, value.content_type or "application/octet-stream"))
                )
            else:
                pairs.append((key, value))
    finally:
        await form.close()
    return pairs


def _header(headers: list[tuple[bytes, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key.decode("latin-1").lower() == name:
            return value.decode("latin-1")
    return None


def _replace(headers: list[tuple[bytes, bytes]], name: str, value: str) -> list[tuple[bytes, bytes]]:
    kept = [(k, v) for k, v in headers if k.decode("latin-1").lower() != name]
    return [*kept, (name.encode(), value.encode("latin-1"))]
