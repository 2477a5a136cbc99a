"""Secrets never leave through what a backend says: the configured API key, and any bearer
token or OpenAI-style secret key, are masked in every string that comes from a backend — error
messages and codes, job errors, batch result lines — before anything truncates, stores or
shows it (a truncated echo would keep a prefix of the key otherwise)."""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
# A bearer credential as servers echo it ("Bearer sk-…", "bearer eyJ…"), and the shape of
# OpenAI-style secret keys wherever they appear on their own.
_TOKENS = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{20,}|\bsk-[A-Za-z0-9_-]{16,}")


class Redactor:
    """Masks `api_key` (when set) and every bearer token in backend text."""

    def __init__(self, api_key: str | None) -> None:
        self._key = api_key or None

    def text(self, value: str) -> str:
        if self._key and self._key in value:
            value = value.replace(self._key, MASK)
        return _TOKENS.sub(lambda m: f"{m.group(1) or ''}{MASK}", value)

    def data(self, value: Any) -> Any:
        """`value` (parsed JSON) with every string in it, keys included, masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.data(item) for item in value]
        if isinstance(value, dict):
            return {self.data(k) if isinstance(k, str) else k: self.data(v) for k, v in value.items()}
        return value
