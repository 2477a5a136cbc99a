"""When and how long to wait before retrying a read.

Only reads (GET, and the idempotent DELETE) are ever retried. A billable POST is never retried:
the official SDK does that without an idempotency key, which can start and bill a second job.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    """How many times, and how patiently, a read is retried."""

    max_retries: int = 3
    initial_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    # A server asking for a longer pause is reported to the caller (the error keeps
    # `retry_after`) rather than waited for: an assistant should not hang for minutes.
    max_retry_after: float = 60.0
    retry_statuses: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retry number `attempt` (0 for the first retry).

        Exponential from `initial_delay`, capped at `max_delay`, then shortened by up to
        `jitter` (a fraction) at random so that many clients do not retry in lockstep. The
        result is always within `[capped * (1 - jitter), capped]`.
        """
        capped = min(self.max_delay, self.initial_delay * 2.0 ** max(0, attempt))
        return capped * (1.0 - self.jitter * rng.random())


DEFAULT_RETRY = RetryPolicy()


RETRY_AFTER_PREFIXES: tuple[str, ...] = ("", "llm_provider-")
"""`retry-after` as servers send it, and as LiteLLM renames it (`llm_provider-retry-after`)."""


def parse_retry_after(
    headers: Mapping[str, str], *, now: float, prefixes: Sequence[str] = RETRY_AFTER_PREFIXES
) -> float | None:
    """Seconds the server asks us to wait, or None when it does not say (or says nonsense).

    `retry-after-ms` (milliseconds, may be fractional) wins over `retry-after`, which is either
    seconds or an HTTP date (made relative to `now`, epoch seconds). A time in the past or a
    negative value means "now" (0). Huge values are returned as they are: comparing them with
    `RetryPolicy.max_retry_after` is the caller's decision. Each of `prefixes` names the pair
    once more (gateways rename them); the first prefix that gives a value wins.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    for prefix in prefixes:
        found = _retry_after(lowered, prefix, now)
        if found is not None:
            return found
    return None


def _retry_after(lowered: Mapping[str, str], prefix: str, now: float) -> float | None:
    millis = _finite_float(lowered.get(f"{prefix}retry-after-ms"))
    if millis is not None:
        return max(0.0, millis / 1000.0)
    raw = lowered.get(f"{prefix}retry-after")
    if raw is None:
        return None
    seconds = _finite_float(raw)
    if seconds is not None:
        return max(0.0, seconds)
    return _seconds_until_http_date(raw, now=now)


def _finite_float(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _seconds_until_http_date(raw: str, *, now: float) -> float | None:
    try:
        when = parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # HTTP dates are always GMT; `-0000` parses as zone-less, so read it as UTC.
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)
