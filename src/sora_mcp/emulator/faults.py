"""Deterministic fault triggers, so clients can be tested against every way the service fails.

Two kinds, both exact (no randomness):

1. **Job faults, in the prompt.** A prompt containing `[fail:CODE]` (for example
   `[fail:moderation_blocked]`) is accepted like any other (HTTP 200, a queued job), then the job
   ends `failed` with `error: {code: CODE, message: …}` at the end of its render time. Works for
   create, remix, edit and extension prompts, and for a batch line's `body.prompt` (that item
   fails, the others complete).

2. **HTTP faults, injected.** `FaultConfig.inject(status, times, retry_after=None,
   methods=None, path=None)` makes the next `times` requests that match (HTTP method in
   `methods`, `path` a substring of the URL path; None = any) answer `status` with the error
   envelope (after the API-key check, before routing), with `retry-after` (whole seconds) and `retry-after-ms`
   headers when `retry_after` is given. Injected faults fire in the order they were added and
   each is used up after `times` matches. A fault answer changes no state.

For the standalone server the same HTTP faults come from the environment variable
`SORA_MCP_EMULATOR_FAULTS` (read by `config.Settings`), parsed by `FaultConfig.parse`:

    SORA_MCP_EMULATOR_FAULTS="500x2,429x1:retry=2,503:methods=GET:path=/content"

Each comma-separated item is `STATUS[xTIMES]` (times defaults to 1) followed by any of
`:retry=SECONDS`, `:methods=GET|POST` (several joined with `|`) and `:path=SUBSTRING`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace

from sora_mcp.emulator.envelope import WireError, retry_after_headers
from sora_mcp.errors import ConfigError

FAULTS_ENV = "SORA_MCP_EMULATOR_FAULTS"

_FAIL_MARK = re.compile(r"\[fail:([A-Za-z0-9_.-]+)\]")

_FAIL_MESSAGES = {
    "moderation_blocked": "Your request was blocked by our moderation system.",
    "sentinel_block": "Your request was blocked by our safety system.",
}

# What the real service says for the statuses clients most often have to survive.
_HTTP_MESSAGES: dict[int, tuple[str, str | None]] = {
    408: ("Request timed out.", None),
    409: ("The request conflicts with another request in progress; try again.", "conflict"),
    429: ("Rate limit reached for requests. Please try again later.", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", None),
    502: ("Bad gateway.", None),
    503: ("The server is overloaded or not ready yet.", None),
    504: ("Gateway timeout.", None),
}

_ITEM = re.compile(r"^(?P<status>\d{3})(?:x(?P<times>\d+))?(?P<options>(?::[^:]*)*)$")


def prompt_failure(prompt: str) -> tuple[str, str] | None:
    """`(code, message)` when the prompt asks its job to fail, else None. First mark wins."""
    match = _FAIL_MARK.search(prompt)
    if match is None:
        return None
    code = match.group(1)
    message = _FAIL_MESSAGES.get(code, f"The video could not be generated (simulated failure '{code}').")
    return code, message


@dataclass(frozen=True)
class HttpFault:
    """One injected HTTP fault and how many more requests it will answer."""

    status: int
    times: int
    retry_after: float | None = None
    methods: frozenset[str] | None = None
    path: str | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method.upper() not in self.methods:
            return False
        return self.path is None or self.path in path

    def error(self) -> WireError:
        message, code = _HTTP_MESSAGES.get(self.status, (f"Injected HTTP {self.status} fault.", None))
        return WireError(self.status, message, code=code, headers=retry_after_headers(self.retry_after))


class FaultConfig:
    """A mutable, thread-safe queue of HTTP faults shared by an emulator app and its test."""

    def __init__(self, faults: Iterable[HttpFault] = ()) -> None:
        self._lock = threading.Lock()
        self._faults = [f for f in faults if f.times > 0]

    def inject(
        self,
        status: int,
        times: int = 1,
        retry_after: float | None = None,
        methods: Iterable[str] | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` (see the module docstring)."""
        if not 400 <= status <= 599:
            raise ValueError(f"an injected fault must be an HTTP error status (400-599), got {status}")
        if times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        fault = HttpFault(
            status=status,
            times=times,
            retry_after=retry_after,
            methods=frozenset(m.upper() for m in methods) if methods is not None else None,
            path=path,
        )
        with self._lock:
            self._faults.append(fault)

    def take(self, method: str, path: str) -> HttpFault | None:
        """Use up one matching fault for this request, or None to let it through."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.matches(method, path):
                    if fault.times == 1:
                        del self._faults[index]
                    else:
                        self._faults[index] = replace(fault, times=fault.times - 1)
                    return fault
        return None

    @property
    def pending(self) -> list[HttpFault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    @classmethod
    def parse(cls, text: str) -> FaultConfig:
        """Faults from the `SORA_MCP_EMULATOR_FAULTS` syntax. Raises ConfigError naming the bad item."""
        faults = []
        for raw in text.split(","):
            item = raw.strip()
            if item:
                faults.append(_parse_item(item))
        return cls(faults)


def _parse_item(item: str) -> HttpFault:
    hint = (
        f"{FAULTS_ENV}: cannot read {item!r}; write items like '500x2', '429x1:retry=2' or "
        "'503:methods=GET|POST:path=/videos', separated by commas"
    )
    match = _ITEM.match(item)
    if match is None:
        raise ConfigError(hint)
    status = int(match.group("status"))
    times = int(match.group("times") or 1)
    if not 400 <= status <= 599 or times < 1:
        raise ConfigError(hint)
    retry_after: float | None = None
    methods: frozenset[str] | None = None
    path: str | None = None
    for option in filter(None, match.group("options").split(":")):
        key, sep, value = option.partition("=")
        if not sep or not value:
            raise ConfigError(hint)
        if key == "retry":
            try:
                retry_after = float(value)
            except ValueError:
                raise ConfigError(hint) from None
            if retry_after < 0:
                raise ConfigError(hint)
        elif key == "methods":
            methods = frozenset(m.strip().upper() for m in value.split("|") if m.strip())
        elif key == "path":
            path = value
        else:
            raise ConfigError(hint)
    return HttpFault(status=status, times=times, retry_after=retry_after, methods=methods, path=path)
